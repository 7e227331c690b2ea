"""Convolution layout per target family, and the passes that convert a model to it."""

from __future__ import annotations

from .options import CompileOptions, Layout

#: Families whose default schedules want a layout other than the model's own.
DEFAULT_LAYOUT = {"x86-cpu": Layout.NCHWC, "arm-cpu": Layout.NHWC}

#: Families whose pipelines legalize blocked convolutions (``accel.blocked_conv``).
BLOCKED_FAMILIES = frozenset({"x86-cpu", "arm-cpu"})

#: relax.transform.ConvertLayout's desired layouts, [data, kernel] per op; pools, elementwise
#: ops and reductions follow their input's layout, so activations stay converted between convs.
#: conv2d_transpose stays NCHW: TOPI legalizes it only in NCHW/IOHW (ConvertLayout would
#: otherwise let it follow its NHWC input and VM codegen would meet an unlowered op).
_CONVERT = {Layout.NHWC: {"relax.nn.conv2d": ["NHWC", "HWIO"],
                          "relax.nn.conv2d_transpose": ["NCHW", "IOHW"]}}


def resolved_layout(family: str, options: CompileOptions) -> Layout:
    """The layout a compile uses: the option when given, else the family's default."""
    return options.desired_layout or DEFAULT_LAYOUT.get(family, Layout.NATIVE)


def layout_passes(family: str, options: CompileOptions, target=None) -> list:
    """ConvertLayout, then fold the weight transposes it inserts into the constants.

    NCHWc picks each convolution's channel blocks from the target's vector width
    (``accel.blocked_conv.conv_layouts``); it needs a family that can legalize them.
    """
    from tvm import relax

    from .passes import FoldSimpleConstants
    from .passes.convert_conv_layout import ConvertConvLayout

    layout = resolved_layout(family, options)
    if layout is Layout.NATIVE:
        return []
    then = [relax.transform.Normalize(), FoldSimpleConstants(), relax.transform.FoldConstant()]
    if layout is Layout.NCHWC:
        return [ConvertConvLayout({}, then, layout_cb=_blocked_cb(family, target))]
    return [ConvertConvLayout(_CONVERT[layout], then)]


def _blocked_cb(family: str, target):
    from .blocked_conv import conv_layouts
    from .cpu_rules.common import vector_lanes
    from .errors import UsageError

    if family not in BLOCKED_FAMILIES:
        raise UsageError(f"layout NCHWc is not available for {family} targets",
                         hint="valid there: " + ", ".join(
                             v.value for v in Layout if v is not Layout.NCHWC))
    lanes = vector_lanes(target)
    return lambda call: conv_layouts(call, lanes)

"""Convolution layout per target family, and the passes that convert a model to it."""

from __future__ import annotations

from .options import CompileOptions, Layout

#: Families whose default schedules want a layout other than the model's own.
DEFAULT_LAYOUT = {"x86-cpu": Layout.NHWC, "arm-cpu": Layout.NHWC}

#: relax.transform.ConvertLayout's desired layouts, [data, kernel] per op; pools, elementwise
#: ops and reductions follow their input's layout, so activations stay converted between convs.
#: conv2d_transpose stays NCHW: TOPI legalizes it only in NCHW/IOHW (ConvertLayout would
#: otherwise let it follow its NHWC input and VM codegen would meet an unlowered op).
_CONVERT = {Layout.NHWC: {"relax.nn.conv2d": ["NHWC", "HWIO"],
                          "relax.nn.conv2d_transpose": ["NCHW", "IOHW"]}}


def resolved_layout(family: str, options: CompileOptions) -> Layout:
    """The layout a compile uses: the option when given, else the family's default."""
    return options.desired_layout or DEFAULT_LAYOUT.get(family, Layout.NATIVE)


def layout_passes(family: str, options: CompileOptions) -> list:
    """ConvertLayout, then fold the weight transposes it inserts into the constants."""
    from tvm import relax

    from .passes import FoldSimpleConstants
    from .passes.convert_conv_layout import ConvertConvLayout

    layout = resolved_layout(family, options)
    if layout is Layout.NATIVE:
        return []
    return [ConvertConvLayout(_CONVERT[layout], [relax.transform.Normalize(),
                                                 FoldSimpleConstants(),
                                                 relax.transform.FoldConstant()])]

"""ConvertConvLayout: relax's ConvertLayout, run only on modules that contain a convolution.

ConvertLayout exists here for convolutions; on graphs without one it only adds risk (in TVM 0.27
its layout inference fails on some elementwise max/min and recurrent graphs: "Invalid SLayout"),
and where it fails on a graph with one (5-D reshapes), the model keeps its own layout.
"""

from __future__ import annotations

import warnings

import tvm
from tvm import relax

_CONV_OPS = ("relax.nn.conv1d", "relax.nn.conv2d", "relax.nn.conv3d")


def has_convolution(mod) -> bool:
    """Whether any Relax function of the module calls a convolution."""
    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") in _CONV_OPS:
            found.append(expr)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return bool(found)


def ConvertConvLayout(desired: dict, then: list, layout_cb=None):  # noqa: N802 - like TVM's
    """ConvertLayout(desired, layout_cb) followed by the ``then`` passes, when the module has a
    conv; ``layout_cb(call)`` (when given) picks each call's layouts instead of ``desired``."""
    inner = tvm.transform.Sequential([relax.transform.ConvertLayout(desired, layout_cb), *then])

    @tvm.transform.module_pass(opt_level=0, name="accel.ConvertConvLayout")
    def convert(mod, _ctx):
        if not has_convolution(mod):
            return mod
        try:
            return inner(mod)
        except Exception as exc:  # TVM's layout inference rejects some graphs (5-D reshapes)
            warnings.warn(f"layout conversion skipped, the model keeps its own layout "
                          f"({str(exc).strip().splitlines()[-1][:160]})", stacklevel=1)
            return mod

    return convert

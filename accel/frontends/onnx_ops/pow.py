"""Pow with mixed base and exponent types (TVM's needs one float type for both)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import dtype


@converter("Pow")
class Pow(OnnxOpConverter):
    """The result has the base's type; integer bases are raised in float64 and cast back."""

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        base, exponent = inputs[0], inputs[1]
        out = dtype(base)
        work = out if out.startswith(("float", "bfloat")) else "float64"
        b = relax.op.astype(base, work) if work != out else base
        e = relax.op.astype(exponent, work) if dtype(exponent) != work else exponent
        result = relax.op.power(b, e)
        return relax.op.astype(result, out) if work != out else result

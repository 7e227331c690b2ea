"""Dropout for inference: Y = X and, when asked for, a mask of all True (TVM's mask is float)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter


@converter("Dropout")
class Dropout(OnnxOpConverter):
    """Training mode is refused by a guard (random); here it is off."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x = inputs[0]
        if attr["tvm_custom"]["num_outputs"] == 1:
            return x
        return relax.Tuple([x, relax.op.ones_like(x, "bool")])

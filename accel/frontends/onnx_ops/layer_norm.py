"""LayerNormalization with all three outputs (TVM's returns placeholders for mean and inv-std)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import dtype, ndim


@converter("LayerNormalization")
class LayerNormalization(OnnxOpConverter):
    """Y by relax's layer_norm; Mean and InvStdDev (stash type float32) over axes axis..rank-1."""

    @classmethod
    def _impl_v17(cls, bb, inputs, attr, params):
        data, scale, bias = inputs[0], inputs[1], inputs[2]
        rank = ndim(data)
        axis = attr.get("axis", -1) % rank
        axes = list(range(axis, rank))
        epsilon = attr.get("epsilon", 1e-05)
        if bias is None:
            bias = relax.op.zeros_like(scale)
        y = relax.op.nn.layer_norm(data, scale, bias, axes, epsilon)
        if attr["tvm_custom"]["num_outputs"] == 1:
            return y
        stash = "float32" if attr.get("stash_type", 1) == 1 else dtype(data)
        x = relax.op.astype(data, stash) if dtype(data) != stash else data
        mean = bb.emit(relax.op.mean(x, axes, keepdims=True))
        variance = relax.op.variance(x, axes, keepdims=True)
        inv_std = relax.op.rsqrt(relax.op.add(variance, relax.const(epsilon, stash)))
        return relax.Tuple([y, mean, bb.emit(inv_std)])

"""Tile as reshape, broadcast and reshape (TVM's tile gives wrong values for some repeats,
e.g. [7, 6, 4, 2] on a 2x3x4x5 tensor)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import const_value, shape


@converter("Tile")
class Tile(OnnxOpConverter):
    """x of shape (d0..dn) -> (1, d0, .., 1, dn) -> broadcast (r0, d0, ..) -> (r0*d0, ..)."""

    @classmethod
    def _impl_v6(cls, bb, inputs, attr, params):
        x = inputs[0]
        repeats = const_value(inputs[1], params)
        if repeats is None:
            raise NotImplementedError("repeats that are not constant")
        dims = shape(bb, x)
        reps = [int(r) for r in repeats.reshape(-1)]
        spread = [v for d in dims for v in (1, d)]
        wide = [v for r, d in zip(reps, dims, strict=True) for v in (r, d)]
        out = relax.op.broadcast_to(relax.op.reshape(x, spread), wide)
        return relax.op.reshape(out, [r * d for r, d in zip(reps, dims, strict=True)])

"""OneHot by comparing indices with arange(depth) (TVM's rejects a float depth; negative indices
count from depth, out-of-range ones give all off values)."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import const_value, dtype, ndim


@converter("OneHot")
class OneHot(OnnxOpConverter):
    """where(indices' == arange(depth) along axis, on, off), depth and values constant."""

    @classmethod
    def _impl_v9(cls, bb, inputs, attr, params):
        indices = inputs[0]
        depth, values = const_value(inputs[1], params), const_value(inputs[2], params)
        if depth is None or values is None:
            raise NotImplementedError("depth and values that are not constant")
        depth = int(depth.reshape(-1)[0])
        rank = ndim(indices) + 1
        axis = attr.get("axis", -1) % rank
        idx = relax.op.astype(indices, "int64")
        idx = relax.op.where(relax.op.less(idx, relax.const(0, "int64")),
                             relax.op.add(idx, relax.const(depth, "int64")), idx)
        idx = bb.emit(relax.op.expand_dims(idx, axis))
        ramp = np.arange(depth, dtype=np.int64).reshape([depth if i == axis else 1
                                                         for i in range(rank)])
        hit = relax.op.equal(idx, relax.const(ramp))
        off, on = (relax.const(v, dtype(inputs[2])) for v in values.reshape(-1)[:2])
        return relax.op.where(hit, on, off)

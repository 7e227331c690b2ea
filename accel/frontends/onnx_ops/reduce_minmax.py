"""ReduceMax / ReduceMin: TVM's start from the largest finite value (an all -inf row gives
-FLT_MAX), cannot reduce bools, and fail on empty sets; these are fixed here."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import const_value, dtype, ndim, shape


class _MinMax(OnnxOpConverter):
    sign = 1  # +1: max, -1: min

    @classmethod
    def _reduce(cls, x, axes, keep):
        return (relax.op.max if cls.sign > 0 else relax.op.min)(x, axes, keep)

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x, rank = inputs[0], ndim(inputs[0])
        axes = cls._axes(inputs, attr, params)
        keep = bool(attr.get("keepdims", 1))
        if not axes:
            if attr.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(rank))
        axes = sorted({a % rank for a in axes})
        dt, dims = dtype(x), shape(bb, x)
        if any(dims[a] == 0 for a in axes):
            return cls._empty(dims, axes, keep, dt)
        if dt == "bool":
            return relax.op.astype(cls._reduce(relax.op.astype(x, "int8"), axes, keep), "bool")
        out = bb.emit(cls._reduce(x, axes, keep))
        if not dt.startswith("float"):
            return out
        inf = relax.const(cls.sign * -np.inf, dt)  # the identity: -inf for max, inf for min
        finite = relax.op.sum(relax.op.astype(relax.op.not_equal(x, inf), "int32"), axes, keep)
        return relax.op.where(relax.op.equal(finite, relax.const(0, "int32")),
                              inf, out)

    @staticmethod
    def _axes(inputs, attr, params):
        if "axes" in attr:
            return list(attr["axes"])
        if len(inputs) > 1 and inputs[1] is not None:
            value = const_value(inputs[1], params)
            if value is None:
                raise NotImplementedError("axes that are not constant")
            return [int(a) for a in value.reshape(-1)]
        return None

    @classmethod
    def _empty(cls, dims, axes, keep, dt):
        """The reduction of an empty set: the op's identity (ONNX's reference)."""
        out = [1 if i in axes else d for i, d in enumerate(dims) if keep or i not in axes]
        if dt == "bool":
            fill = cls.sign < 0
        elif dt.startswith("float"):
            fill = cls.sign * -np.inf
        else:
            info = np.iinfo(dt)
            fill = info.min if cls.sign > 0 else info.max
        return relax.const(np.full(out, fill, dtype=dt))


@converter("ReduceMax")
class ReduceMax(_MinMax):
    """max, -inf for all -inf (or empty) sets."""

    sign = 1


@converter("ReduceMin")
class ReduceMin(_MinMax):
    """min, inf for all inf (or empty) sets."""

    sign = -1


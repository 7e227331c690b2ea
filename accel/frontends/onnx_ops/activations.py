"""Ops TVM lacks that take a few elementwise lines: Swish, Celu, CumProd, LpNormalization."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import const_value, dtype, ndim


@converter("Swish")
class Swish(OnnxOpConverter):
    """x * sigmoid(alpha * x)."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x = inputs[0]
        alpha = relax.const(attr.get("alpha", 1.0), dtype(x))
        return relax.op.multiply(x, relax.op.sigmoid(relax.op.multiply(alpha, x)))


@converter("Celu")
class Celu(OnnxOpConverter):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        x = inputs[0]
        dt = dtype(x)
        alpha = relax.const(attr.get("alpha", 1.0), dt)
        zero, one = relax.const(0, dt), relax.const(1, dt)
        neg = relax.op.multiply(alpha, relax.op.subtract(relax.op.exp(relax.op.divide(x, alpha)),
                                                         one))
        return relax.op.add(relax.op.maximum(zero, x), relax.op.minimum(zero, neg))


@converter("CumProd")
class CumProd(OnnxOpConverter):
    """Cumulative product along a constant axis, with exclusive and reverse."""

    @classmethod
    def _impl_v26(cls, bb, inputs, attr, params):
        x = inputs[0]
        axis = const_value(inputs[1], params)
        if axis is None:
            raise NotImplementedError("a CumProd axis that is not a constant")
        axis = int(axis.reshape(-1)[0]) % ndim(x)
        reverse = attr.get("reverse", 0)
        if reverse:
            x = relax.op.flip(x, axis)
        out = relax.op.cumprod(x, axis, exclusive=bool(attr.get("exclusive", 0)))
        return relax.op.flip(out, axis) if reverse else out


@converter("LpNormalization")
class LpNormalization(OnnxOpConverter):
    """x / ||x||_p along axis (p 1 or 2); a zero norm gives 0."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x = inputs[0]
        dt = dtype(x)
        axis, p = attr.get("axis", -1), attr.get("p", 2)
        if p == 1:
            norm = relax.op.sum(relax.op.abs(x), axis=[axis], keepdims=True)
        elif p == 2:
            norm = relax.op.sqrt(relax.op.sum(relax.op.multiply(x, x), axis=[axis],
                                              keepdims=True))
        else:
            raise NotImplementedError(f"p={p} (ONNX allows 1 and 2)")
        norm = bb.emit(norm)
        zero = relax.const(0, dt)
        safe = relax.op.where(relax.op.equal(norm, zero), relax.const(1, dt), norm)
        return relax.op.where(relax.op.equal(norm, zero), relax.op.zeros_like(x),
                              relax.op.divide(x, safe))

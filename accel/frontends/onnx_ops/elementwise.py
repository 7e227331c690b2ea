"""Elementwise ops where TVM's converter is wrong at edges: BitShift, IsInf, Softplus, Mish."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import attr_str, bits, dtype


@converter("BitShift")
class BitShift(OnnxOpConverter):
    """Shifts by a negative amount or by the bit width or more give 0 (ONNX 28's definition)."""

    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        x, y = inputs[0], inputs[1]
        left = attr_str(attr, "direction", "LEFT") == "LEFT"
        shifted = relax.op.left_shift(x, y) if left else relax.op.right_shift(x, y)
        width = relax.const(bits(x), dtype(y))
        out = relax.op.greater_equal(y, width)
        if not dtype(y).startswith("uint"):
            out = relax.op.logical_or(out, relax.op.less(y, relax.const(0, dtype(y))))
        fill = relax.op.zeros_like(x)
        if not left and not dtype(x).startswith("uint"):  # arithmetic shift: the sign remains
            fill = relax.op.where(relax.op.less(x, relax.const(0, dtype(x))),
                                  relax.const(-1, dtype(x)), fill)
        return relax.op.where(out, fill, shifted)


@converter("IsInf")
class IsInf(OnnxOpConverter):
    """Honours detect_negative and detect_positive (TVM's ignores them)."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x = inputs[0]
        result = relax.op.isinf(x)
        zero = relax.const(0, dtype(x))
        if not attr.get("detect_negative", 1):
            result = relax.op.logical_and(result, relax.op.greater(x, zero))
        if not attr.get("detect_positive", 1):
            result = relax.op.logical_and(result, relax.op.less(x, zero))
        return result


def _log1p(z, dt: str):
    """log(1 + z) accurate for small z (Kahan: log(u) * z / (u - 1), u = 1 + z); relax has no
    log1p."""
    one = relax.const(1, dt)
    u = relax.op.add(one, z)
    denom = relax.op.subtract(u, one)
    exact = relax.op.divide(relax.op.multiply(relax.op.log(u), z),
                            relax.op.where(relax.op.equal(denom, relax.const(0, dt)),
                                           one, denom))
    return relax.op.where(relax.op.equal(u, one), z, exact)


def _softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    tail = _log1p(relax.op.exp(relax.op.negative(relax.op.abs(x))), dtype(x))
    return relax.op.add(relax.op.maximum(x, relax.const(0, dtype(x))), tail)


@converter("Softplus")
class Softplus(OnnxOpConverter):
    """Overflow-free softplus (TVM's computes exp(x) first, inf for large x)."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        return _softplus(inputs[0])


@converter("Mish")
class Mish(OnnxOpConverter):
    """x * tanh(softplus(x)) with the overflow-free softplus."""

    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        return relax.op.multiply(inputs[0], relax.op.tanh(_softplus(inputs[0])))

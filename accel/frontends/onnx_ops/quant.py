"""QLinearMatMul, QLinearConv and ConvInteger as integer compute: the matmul / conv runs on the
raw int8 and uint8 values with int32 accumulation, zero points handled by correction terms
(see _qint), and the result requantized with onnx's reference rounding."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import _qint as q
from . import converter
from ._util import dtype, ndim

_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _round_half_even(bb, v):
    """numpy's rint: floor(v + 0.5), one less on exact odd ties (TVM's round is half-away)."""
    dt = dtype(v)
    r = bb.emit(relax.op.floor(relax.op.add(v, relax.const(0.5, dt))))
    tie = relax.op.equal(relax.op.subtract(r, v), relax.const(0.5, dt))
    half = relax.op.multiply(relax.op.floor(relax.op.multiply(r, relax.const(0.5, dt))),
                             relax.const(2, dt))
    odd = relax.op.not_equal(r, half)
    # r - (tie and odd), not a where: relax.where has no layout inference (see _clip)
    return bb.emit(relax.op.subtract(r, relax.op.astype(relax.op.logical_and(tie, odd), dt)))


def _clip(v, lo: int, hi: int):
    """min(max(v, lo), hi) as two binary ops: relax.clip has no layout inference, so a
    conversion to NHWC would wrap it in transposes and split it from its conv."""
    dt = dtype(v)
    return relax.op.minimum(relax.op.maximum(v, relax.const(lo, dt)), relax.const(hi, dt))


def _requantize(bb, acc, ratio, zero_point, out_dtype, *, clip_first):
    """acc * ratio + zero_point in float64 (as numpy promotes int32 * float), saturated."""
    v = relax.op.multiply(relax.op.astype(acc, "float64"), relax.op.astype(ratio, "float64"))
    if zero_point is not None:
        v = relax.op.add(v, relax.op.astype(zero_point, "float64"))
    lo, hi = _RANGES[out_dtype]
    v = bb.emit(v)
    if clip_first:
        v = bb.emit(_clip(v, lo, hi))
    v = _round_half_even(bb, v)
    return relax.op.astype(_clip(v, lo, hi), out_dtype)


def _integer_matmul(bb, a, a_zp, b, b_zp, params):
    """sum_k (a - a_zp)(b - b_zp) in int32, the matmul itself on the raw values."""
    b, b_zp = q.int8_weight(bb, b, b_zp, params)
    acc = bb.emit(relax.op.matmul(a, b, out_dtype="int32"))
    if not q.is_zero(a_zp, params):
        per_row = ndim(a_zp) == 1
        a_zp = bb.emit(relax.op.astype(a_zp, "int32"))
        if per_row:
            a_zp = relax.op.reshape(a_zp, (-1, 1))
        acc = q.subtract_scaled(bb, acc, a_zp, q.centered_sum(bb, b, b_zp, [-2]))
    if b_zp is not None:
        rows = relax.op.sum(relax.op.astype(a, "int32"), axis=[-1], keepdims=True)
        acc = q.subtract_scaled(bb, acc, b_zp, rows)
    return acc


@converter("QLinearMatMul")
class QLinearMatMul(OnnxOpConverter):
    """Integer matmul scaled by a_scale * b_scale / y_scale."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = (inputs[i] for i in range(8))
        acc = _integer_matmul(bb, a, a_zp, b, b_zp, params)
        ratio = relax.op.divide(relax.op.multiply(a_s, b_s), y_s)
        out = dtype(y_zp) if y_zp is not None else dtype(a)
        return _requantize(bb, acc, ratio, y_zp, out, clip_first=False)


def _integer_conv(bb, x, x_zp, w, w_zp, attr, params, bias=None):
    """sum (x - x_zp)(w - w_zp) over each window in int32 (padding counts as x_zp), + bias.

    The bias and the x_zp term are one per-channel vector added once (FoldConstant makes it a
    single constant), so the fused epilogue reads one int32 vector, not two."""
    if attr.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad other than NOTSET")
    if ndim(x) != 4:
        raise NotImplementedError("only 2-D convolutions")
    w, w_zp = q.int8_weight(bb, w, w_zp, params)
    x, pads = q.padded_input(bb, x, x_zp, tuple(attr.get("pads", (0, 0, 0, 0))), params)

    def conv(data, weight, groups):
        return relax.op.nn.conv2d(data, weight, strides=attr.get("strides", (1, 1)),
                                  padding=pads, dilation=attr.get("dilations", (1, 1)),
                                  groups=groups, out_dtype="int32")

    acc = bb.emit(conv(x, w, attr.get("group", 1)))
    offset = None if bias is None else relax.op.astype(bias, "int32")
    if not q.is_zero(x_zp, params):
        sums = q.centered_sum(bb, w, w_zp, [1, 2, 3])
        term = relax.op.multiply(relax.op.astype(x_zp, "int32"), sums)
        offset = relax.op.negative(term) if offset is None else relax.op.subtract(offset, term)
    if offset is not None:
        acc = bb.emit(relax.op.add(acc, relax.op.reshape(bb.emit(offset), (1, -1, 1, 1))))
    if w_zp is not None:
        zp = relax.op.reshape(w_zp, (1, -1, 1, 1)) if ndim(w_zp) == 1 else w_zp
        acc = q.subtract_scaled(bb, acc, zp, q.conv_window_sums(bb, x, w, conv))
    return acc


@converter("ConvInteger")
class ConvInteger(OnnxOpConverter):
    """Integer convolution with int32 output."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        return _integer_conv(bb, inputs[0], inputs[2], inputs[1], inputs[3], attr, params)


@converter("QLinearConv")
class QLinearConv(OnnxOpConverter):
    """Integer convolution (+ int32 bias), scaled per tensor or per output channel."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp = (inputs[i] for i in range(8))
        acc = _integer_conv(bb, x, x_zp, w, w_zp, attr, params, bias=inputs[8])
        if ndim(w_s) == 1:
            w_s = bb.emit(relax.op.reshape(w_s, (1, -1, 1, 1)))
        ratio = relax.op.divide(relax.op.multiply(x_s, w_s), y_s)
        out = dtype(y_zp) if y_zp is not None else dtype(x)
        return _requantize(bb, acc, ratio, y_zp, out, clip_first=True)

"""QLinearMatMul, QLinearConv and ConvInteger as int32 arithmetic, rounded as onnx's reference."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import dtype, ndim

_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _centered(bb, x, zero_point, channel_axis_rank=None):
    """int32(x) - int32(zero_point); a 1-D zero point is per output channel (axis 0)."""
    x = relax.op.astype(x, "int32")
    if zero_point is None:
        return bb.emit(x)
    zp = bb.emit(relax.op.astype(zero_point, "int32"))
    if channel_axis_rank and ndim(zero_point) == 1:
        zp = relax.op.reshape(zp, (-1,) + (1,) * (channel_axis_rank - 1))
    return bb.emit(relax.op.subtract(x, zp))


def _round_half_even(bb, v):
    """numpy's rint: floor(v + 0.5), one less on exact odd ties (TVM's round is half-away)."""
    dt = dtype(v)
    r = bb.emit(relax.op.floor(relax.op.add(v, relax.const(0.5, dt))))
    tie = relax.op.equal(relax.op.subtract(r, v), relax.const(0.5, dt))
    half = relax.op.multiply(relax.op.floor(relax.op.multiply(r, relax.const(0.5, dt))),
                             relax.const(2, dt))
    odd = relax.op.not_equal(r, half)
    return bb.emit(relax.op.where(relax.op.logical_and(tie, odd),
                                  relax.op.subtract(r, relax.const(1, dt)), r))


def _requantize(bb, acc, ratio, zero_point, out_dtype, *, clip_first):
    """acc * ratio + zero_point in float64 (as numpy promotes int32 * float), saturated."""
    v = relax.op.multiply(relax.op.astype(acc, "float64"), relax.op.astype(ratio, "float64"))
    if zero_point is not None:
        v = relax.op.add(v, relax.op.astype(zero_point, "float64"))
    lo, hi = _RANGES[out_dtype]
    v = bb.emit(v)
    if clip_first:
        v = bb.emit(relax.op.clip(v, lo, hi))
    v = _round_half_even(bb, v)
    return relax.op.astype(relax.op.clip(v, lo, hi), out_dtype)


@converter("QLinearMatMul")
class QLinearMatMul(OnnxOpConverter):
    """int32 matmul of the centered inputs, scaled by a_scale * b_scale / y_scale."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = (inputs[i] for i in range(8))
        acc = relax.op.matmul(_centered(bb, a, a_zp), _centered(bb, b, b_zp), out_dtype="int32")
        ratio = relax.op.divide(relax.op.multiply(a_s, b_s), y_s)
        out = dtype(y_zp) if y_zp is not None else dtype(a)
        return _requantize(bb, bb.emit(acc), ratio, y_zp, out, clip_first=False)


def _conv(bb, x, w, attr):
    if attr.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad other than NOTSET")
    if ndim(x) != 4:
        raise NotImplementedError("only 2-D convolutions")
    pads = attr.get("pads", (0, 0, 0, 0))
    return bb.emit(relax.op.nn.conv2d(x, w, strides=attr.get("strides", (1, 1)), padding=pads,
                                      dilation=attr.get("dilations", (1, 1)),
                                      groups=attr.get("group", 1), out_dtype="int32"))


@converter("ConvInteger")
class ConvInteger(OnnxOpConverter):
    """int32 convolution of the centered inputs."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x = _centered(bb, inputs[0], inputs[2])
        w = _centered(bb, inputs[1], inputs[3], channel_axis_rank=ndim(inputs[1]))
        return _conv(bb, x, w, attr)


@converter("QLinearConv")
class QLinearConv(OnnxOpConverter):
    """int32 convolution (+ int32 bias), scaled per tensor or per output channel."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp = (inputs[i] for i in range(8))
        acc = _conv(bb, _centered(bb, x, x_zp),
                    _centered(bb, w, w_zp, channel_axis_rank=ndim(w)), attr)
        if inputs[8] is not None:
            bias = bb.emit(relax.op.astype(inputs[8], "int32"))
            acc = bb.emit(relax.op.add(acc, relax.op.reshape(bias, (1, -1, 1, 1))))
        if ndim(w_s) == 1:
            w_s = bb.emit(relax.op.reshape(w_s, (1, -1, 1, 1)))
        ratio = relax.op.divide(relax.op.multiply(x_s, w_s), y_s)
        out = dtype(y_zp) if y_zp is not None else dtype(x)
        return _requantize(bb, acc, ratio, y_zp, out, clip_first=True)

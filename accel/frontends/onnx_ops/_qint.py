"""Integer-domain pieces of the QOperator converters: the heavy conv/matmul runs on the raw int8
/ uint8 values (out_dtype int32) and the zero points become correction terms, which
FoldConstant precomputes when weights and zero points are constants.

With x' = x - xz and w' = w - wz: sum x'w' = sum x*w - wz * sum(x) - xz * sum(w'). uint8
weights are moved to int8 first (w - 128, wz - 128), the dtype the dot-product kernels take."""

from __future__ import annotations

import numpy as np
from tvm import relax

from ._util import const_value, dtype, ndim, shape


def is_zero(expr, params) -> bool:
    """True when ``expr`` is absent or a constant that is zero everywhere."""
    if expr is None:
        return True
    value = const_value(expr, params)
    return value is not None and not np.any(value)


def int8_weight(bb, w, w_zp, params):
    """(int8 weight, int32 zero point or None when it is statically zero)."""
    if dtype(w) == "uint8":
        w = bb.emit(relax.op.astype(relax.op.subtract(relax.op.astype(w, "int16"),
                                                      relax.const(128, "int16")), "int8"))
        zp = relax.const(0, "int32") if w_zp is None else relax.op.astype(w_zp, "int32")
        zp = bb.emit(relax.op.subtract(zp, relax.const(128, "int32")))
        value = const_value(zp, params)
        return w, (None if value is not None and not np.any(value) else zp)
    if is_zero(w_zp, params):
        return w, None
    return w, bb.emit(relax.op.astype(w_zp, "int32"))


def centered_sum(bb, w, w_zp, axes):
    """sum(int32(w) - w_zp) over ``axes``: one value per output channel / column."""
    w32 = relax.op.astype(w, "int32")
    if w_zp is not None:
        w32 = relax.op.subtract(w32, _per_axis(w_zp, ndim(w), 0 if axes != [-2] else -1))
    return bb.emit(relax.op.sum(w32, axis=axes))


def _per_axis(zp, rank: int, axis: int):
    """A 1-D zero point shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    if ndim(zp) == 0:
        return zp
    shape_ = [1] * rank
    shape_[axis] = -1
    return relax.op.reshape(zp, shape_)


def padded_input(bb, x, x_zp, pads, params):
    """(input, conv padding): padding the conv can do itself when the zero point is 0, else
    the input padded with its zero point (a constant pad value, or a mask for a runtime one)."""
    top, left, bottom, right = pads
    if not any(pads) or is_zero(x_zp, params):
        return x, pads
    width = [0, 0, 0, 0, top, bottom, left, right]
    value = const_value(x_zp, params)
    if value is not None and value.size == 1:
        padded = relax.op.nn.pad(x, width, pad_value=float(value.reshape(())))
        return bb.emit(padded), (0,) * 4
    _, _, h, w_ = shape(bb, x)
    mask = np.zeros((1, 1, h + top + bottom, w_ + left + right), bool)
    mask[..., top:top + h, left:left + w_] = True
    zeros = bb.emit(relax.op.nn.pad(x, width))
    zp = relax.op.reshape(x_zp, ())
    return bb.emit(relax.op.where(relax.const(mask), zeros, zp)), (0,) * 4


def conv_window_sums(bb, x, w, conv):
    """sum of the input over each output position's window, per group, repeated to the
    output channels: what a weight zero point multiplies."""
    cout, cin_g, kh, kw = shape(bb, w)
    groups = shape(bb, x)[1] // cin_g
    ones = relax.const(np.ones((groups, cin_g, kh, kw), np.int8))
    sums = bb.emit(conv(x, ones, groups))
    return bb.emit(relax.op.repeat(sums, cout // groups, axis=1)) if groups > 1 else sums


def subtract_scaled(bb, acc, factor, term):
    """acc - factor * term (int32)."""
    return bb.emit(relax.op.subtract(acc, relax.op.multiply(factor, term)))

"""TE definitions of the int8 conv2d (NHWC) and matmul kernels on pre-packed weights, and the
numpy packing of their constant weights (the layout the dot-product intrinsics read)."""

from __future__ import annotations

import numpy as np

#: Block annotation that marks the reduction for accel.cpu_rules.Int8Contraction; its value is
#: the DotKind name.
ANNOTATION = "accel.int8_dot"


def pack_conv_weight(weight: np.ndarray, kind) -> np.ndarray:
    """HWIO int8 -> [KH, KW, O/lanes, I/depth, lanes, depth] in ``kind.b_dtype`` (I padded
    with zeros to a multiple of depth)."""
    kh, kw, cin, cout = weight.shape
    cin_p = -(-cin // kind.depth) * kind.depth
    w = np.zeros((kh, kw, cin_p, cout), weight.dtype)
    w[:, :, :cin] = weight
    w = w.reshape(kh, kw, cin_p // kind.depth, kind.depth, cout // kind.lanes, kind.lanes)
    return np.ascontiguousarray(w.transpose(0, 1, 4, 2, 5, 3)).astype(kind.b_dtype)


def pack_matmul_weight(weight: np.ndarray, kind) -> np.ndarray:
    """[K, N] int8 -> [N/lanes, K/depth, lanes, depth] in ``kind.b_dtype`` (K zero-padded)."""
    k, n = weight.shape
    k_p = -(-k // kind.depth) * kind.depth
    w = np.zeros((k_p, n), weight.dtype)
    w[:k] = weight
    w = w.reshape(k_p // kind.depth, kind.depth, n // kind.lanes, kind.lanes)
    return np.ascontiguousarray(w.transpose(2, 0, 3, 1)).astype(kind.b_dtype)


def _shifted(value, kind, shift: int):
    """``value + shift`` in the instruction's activation dtype (a no-op when shift is 0)."""
    if not shift:
        return value
    return (value.astype("int32") + shift).astype(kind.a_dtype)


def conv2d_nhwc(data, weight, correction, *, kind, shift, strides, padding, dilation,
                in_channels: int, pad_value: int):
    """int32 conv of NHWC ``data`` with the packed ``weight``; ``correction`` [O] int32 (or
    None) is added per output channel (it undoes the activation ``shift``)."""
    from tvm import te, tirx

    n, h, w, _ = (int(d) for d in data.shape)
    kh, kw, o_blocks, c_blocks = (int(d) for d in weight.shape[:4])
    lanes, depth = kind.lanes, kind.depth
    top, left, bottom, right = padding
    padded = _pad_stage(data, kind, shift, (top, left, bottom, right), c_blocks * depth,
                        in_channels, pad_value)
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + left + right - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw")
    rc, rk = te.reduce_axis((0, c_blocks), "rc"), te.reduce_axis((0, depth), "rk")

    def body(b, y, x, o):
        a = padded[b, y * strides[0] + rh * dilation[0], x * strides[1] + rw * dilation[1],
                   rc * depth + rk]
        wt = weight[rh, rw, tirx.indexdiv(o, lanes), rc, tirx.indexmod(o, lanes), rk]
        return te.sum(a.astype("int32") * wt.astype("int32"), axis=[rh, rw, rc, rk])

    out = te.compute((n, oh, ow, o_blocks * lanes), body, name="conv2d_int8",
                     attrs={ANNOTATION: kind.name})
    return _corrected(out, correction)


def _pad_stage(data, kind, shift, padding, channels: int, in_channels: int, pad_value: int):
    """Spatial padding with ``pad_value``, channels padded to ``channels``, shifted; the input
    itself when none of those applies."""
    from tvm import te, tirx

    top, left, bottom, right = padding
    if not any(padding) and channels == in_channels and not shift:
        return data
    n, h, w, _ = (int(d) for d in data.shape)

    def body(b, y, x, c):
        inside = tirx.all(y >= top, y < h + top, x >= left, x < w + left, c < in_channels)
        value = tirx.if_then_else(inside, data[b, y - top, x - left, c],
                                  tirx.const(pad_value, data.dtype))
        return _shifted(value, kind, shift)

    return te.compute((n, h + top + bottom, w + left + right, channels), body, name="pad_int8")


def matmul(data, weight, correction, *, kind, shift, in_features: int):
    """int32 ``data @ W`` for the packed [N/lanes, K/depth, lanes, depth] ``weight``."""
    from tvm import te, tirx

    n_blocks, k_blocks, lanes, depth = (int(d) for d in weight.shape)
    batch = [int(d) for d in data.shape[:-1]]
    a = data
    if shift or k_blocks * depth != in_features:
        def pad_body(*idx):
            inside = idx[-1] < in_features
            value = tirx.if_then_else(inside, data[(*idx[:-1], idx[-1])],
                                      tirx.const(0, data.dtype))
            return _shifted(value, kind, shift)
        a = te.compute((*batch, k_blocks * depth), pad_body, name="pad_int8")
    rc, rk = te.reduce_axis((0, k_blocks), "rc"), te.reduce_axis((0, depth), "rk")

    def body(*idx):
        o = idx[-1]
        lhs = a[(*idx[:-1], rc * depth + rk)]
        rhs = weight[tirx.indexdiv(o, lanes), rc, tirx.indexmod(o, lanes), rk]
        return te.sum(lhs.astype("int32") * rhs.astype("int32"), axis=[rc, rk])

    out = te.compute((*batch, n_blocks * lanes), body, name="matmul_int8",
                     attrs={ANNOTATION: kind.name})
    return _corrected(out, correction)


def _corrected(out, correction):
    from tvm import te

    if correction is None:
        return out
    return te.compute(out.shape, lambda *i: out(*i) + correction[i[-1]], name="shift_correct")

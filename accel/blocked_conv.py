"""Blocked-layout convolutions (NCHW{c}c activations, OIHW{i}i{o}o weights): choice of block
sizes per convolution, and their legalization into TE compute (TVM 0.27's LegalizeOps leaves
convolutions with channel blocks alone)."""

from __future__ import annotations

import re

_DATA = re.compile(r"^NCHW(\d+)c$")
_KERNEL = re.compile(r"^OIHW(\d+)i(\d+)o$")


def channel_block(channels: int, lanes: int) -> int | None:
    """The channel block for a tensor of ``channels``: two vectors, one vector, or a smaller
    power of two dividing it; the whole dimension when it fits one vector; else None."""
    for block in (2 * lanes, lanes, 8, 4, 2):
        if block <= channels and channels % block == 0:
            return block
    return channels if channels <= lanes else None


def conv_layouts(call, lanes: int) -> dict:
    """ConvertLayout's ``layout_cb``: blocked layouts for a dense or depthwise 2-D convolution
    whose channel counts have a block, NHWC for an int8 one (``PackInt8Contractions``); ``{}``
    (keep the layout) for anything else."""
    if getattr(call.op, "name", "") != "relax.nn.conv2d":
        return {}
    attrs = call.attrs
    if attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW":
        return {}
    if str(call.args[0].ty.dtype) in ("int8", "uint8"):  # the int8 dot-product kernels are NHWC
        return {"relax.nn.conv2d": ["NHWC", "HWIO"]}
    shape = [_int(d) for d in call.args[1].ty.shape]  # OIHW
    if None in shape:
        return {}
    cout, cin_per_group = shape[0], shape[1]
    groups = int(attrs.groups)
    cin = cin_per_group * groups
    in_block, out_block = channel_block(cin, lanes), channel_block(cout, lanes)
    if in_block is None or out_block is None:
        return {}
    if groups == 1:
        kernel = f"OIHW{in_block}i{out_block}o"
    elif groups == cin == cout:
        kernel = f"OIHW1i{out_block}o"
    else:
        return {}
    return {"relax.nn.conv2d": [f"NCHW{in_block}c", kernel, f"NCHW{out_block}c"]}


def _int(dim) -> int | None:
    value = getattr(dim, "value", None)
    return int(value) if value is not None else None


def is_blocked(attrs) -> bool:
    """Whether a conv2d call's layouts are the blocked ones this module legalizes."""
    return bool(_DATA.match(attrs.data_layout) and _KERNEL.match(attrs.kernel_layout)
                and _DATA.match(attrs.out_layout))


def legalize_conv2d(bb, call):
    """LegalizeOps entry for relax.nn.conv2d: blocked layouts here, the rest to TVM's rule."""
    import tvm

    if not is_blocked(call.attrs):
        default = tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")
        return default(bb, call)
    attrs = call.attrs
    args = dict(strides=[int(s) for s in attrs.strides],
                padding=[int(p) for p in attrs.padding],
                dilation=[int(d) for d in attrs.dilation],
                out_dtype=attrs.out_dtype or None)
    if int(attrs.groups) == 1:
        return bb.call_te(conv2d_nchwc, call.args[0], call.args[1], **args,
                          primfunc_name_hint="conv2d_nchwc")
    return bb.call_te(depthwise_conv2d_nchwc, call.args[0], call.args[1], **args,
                      primfunc_name_hint="depthwise_conv2d_nchwc")


def _padded(data, padding, name="pad"):
    from tvm import topi

    top, left, bottom, right = padding
    if not any(padding):
        return data
    return topi.nn.pad(data, [0, 0, top, left, 0], [0, 0, bottom, right, 0], name=name)


def _out_size(size, pad, kernel, stride, dilation):
    return (size + pad - (kernel - 1) * dilation - 1) // stride + 1


def conv2d_nchwc(data, kernel, strides, padding, dilation, out_dtype=None):
    """Dense conv: data [N, C/i, H, W, i], kernel [O/o, C/i, KH, KW, i, o] ->
    [N, O/o, OH, OW, o]; the reduction runs over (C/i, KH, KW, i)."""
    from tvm import te

    n, ic_chunk, h, w, _ = (int(d) for d in data.shape)
    oc_chunk, _, kh_n, kw_n, ic_block, oc_block = (int(d) for d in kernel.shape)
    (sh, sw), (dh, dw) = strides, dilation
    oh = _out_size(h, padding[0] + padding[2], kh_n, sh, dh)
    ow = _out_size(w, padding[1] + padding[3], kw_n, sw, dw)
    dtype = out_dtype or data.dtype
    pad = _padded(data, padding)
    ico = te.reduce_axis((0, ic_chunk), name="ico")
    kh = te.reduce_axis((0, kh_n), name="kh")
    kw = te.reduce_axis((0, kw_n), name="kw")
    ici = te.reduce_axis((0, ic_block), name="ici")
    return te.compute(
        (n, oc_chunk, oh, ow, oc_block),
        lambda b, oc, y, x, ocb: te.sum(
            pad[b, ico, y * sh + kh * dh, x * sw + kw * dw, ici].astype(dtype)
            * kernel[oc, ico, kh, kw, ici, ocb].astype(dtype), axis=[ico, kh, kw, ici]),
        name="conv2d_nchwc", tag="conv2d_nchwc")


def depthwise_conv2d_nchwc(data, kernel, strides, padding, dilation, out_dtype=None):
    """Depthwise conv: data [N, C/c, H, W, c], kernel [C/c, 1, KH, KW, 1, c] -> same layout."""
    from tvm import te

    n, c_chunk, h, w, c_block = (int(d) for d in data.shape)
    _, _, kh_n, kw_n, _, _ = (int(d) for d in kernel.shape)
    (sh, sw), (dh, dw) = strides, dilation
    oh = _out_size(h, padding[0] + padding[2], kh_n, sh, dh)
    ow = _out_size(w, padding[1] + padding[3], kw_n, sw, dw)
    dtype = out_dtype or data.dtype
    pad = _padded(data, padding)
    kh = te.reduce_axis((0, kh_n), name="kh")
    kw = te.reduce_axis((0, kw_n), name="kw")
    return te.compute(
        (n, c_chunk, oh, ow, c_block),
        lambda b, c, y, x, cb: te.sum(
            pad[b, c, y * sh + kh * dh, x * sw + kw * dw, cb].astype(dtype)
            * kernel[c, 0, kh, kw, 0, cb].astype(dtype), axis=[kh, kw]),
        name="depthwise_conv2d_nchwc", tag="depthwise_conv2d_nchwc")

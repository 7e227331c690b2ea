"""Group-wise symmetric weight quantization: numpy packing of int8 / int4 weights, their numpy
dequantization (the reference), and the TE kernel that dequantizes inside the matmul.

Layout, for a matmul weight ``W`` of shape [K, N] (K input channels, N outputs):

- int8: ``q`` int8 [K, N]; int4: uint8 [ceil(K/2), N], input channels ``2i`` (low nibble)
  and ``2i+1`` (high nibble) in one byte, each nibble ``q + 8`` (an odd K pads a zero).
  Packing along K keeps the output axis contiguous, so the kernel loads whole vectors of
  outputs and shifts them by a constant.
- on CPUs the packed rows are blocked by output columns, [N/B, rows, B] (B: the schedule's
  vector tile), so each parallel task reads one contiguous stream (block_columns).
- scales: float32 [ceil(K/G), N], one per group of ``G`` input channels per output;
  ``scale = max|W| / qmax`` over the group (qmax 127 or 7), ``q = round(W / scale)``. A last
  group shorter than ``G`` (K not a multiple of G) has its own scale over the channels it has.
  float32 scales cost 4/G bytes per weight (3% at G=128) and need no float16 conversion in the
  inner loop, which CPUs without F16C would call a library function for.
"""

from __future__ import annotations

import numpy as np

QMAX = {8: 127, 4: 7}
STORAGE = {8: "int8", 4: "uint8"}


def quantize_groupwise(w: np.ndarray, bits: int, group_size: int):
    """(packed weights, float32 scales) for a float [K, N] weight."""
    q, scales = _quantize(np.asarray(w, np.float32), QMAX[bits], group_size)
    return (q.astype(np.int8) if bits == 8 else _pack_int4(q)), scales


def block_columns(packed: np.ndarray, block: int) -> np.ndarray:
    """[R, N] -> [N / block, R, block]: each block of outputs contiguous over all rows, so
    the thread computing it streams its weights instead of striding over [R, N] rows."""
    rows, n = packed.shape
    return np.ascontiguousarray(packed.reshape(rows, n // block, block).transpose(1, 0, 2))


def unblock_columns(packed: np.ndarray) -> np.ndarray:
    """The inverse of :func:`block_columns` (a 2-D array is returned as it is)."""
    if packed.ndim == 2:
        return packed
    blocks, rows, block = packed.shape
    return packed.transpose(1, 0, 2).reshape(rows, blocks * block)


def dequantize(packed: np.ndarray, scales: np.ndarray, bits: int, group_size: int, k: int):
    """The float32 [K, N] weight the kernel computes with (the numpy reference)."""
    packed = unblock_columns(packed)
    q = packed.astype(np.float32) if bits == 8 else _unpack_int4(packed, k).astype(np.float32)
    return q * np.repeat(scales, group_size, axis=0)[:k]


def _quantize(w: np.ndarray, qmax: int, group_size: int):
    k, n = w.shape
    groups = -(-k // group_size)
    padded = np.zeros((groups * group_size, n), np.float32)
    padded[:k] = w
    absmax = np.abs(padded.reshape(groups, group_size, n)).max(axis=1)
    scales = np.where(absmax > 0, absmax / qmax, 1.0).astype(np.float32)
    q = np.rint(w / np.repeat(scales, group_size, axis=0)[:k])
    return np.clip(q, -qmax, qmax).astype(np.int32), scales


def _pack_int4(q: np.ndarray) -> np.ndarray:
    k, n = q.shape
    nibbles = np.full((k + k % 2, n), 8, np.uint8)
    nibbles[:k] = q + 8
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)


def _unpack_int4(packed: np.ndarray, k: int) -> np.ndarray:
    nibbles = np.empty((packed.shape[0] * 2, packed.shape[1]), np.int32)
    nibbles[0::2] = packed & 0xF
    nibbles[1::2] = packed >> 4
    return nibbles[:k] - 8


def dequant_matmul_te(x, packed, scales, *, bits: int, group_size: int,
                      prologue: bool = False):
    """TE: ``x @ dequantize(packed, scales)`` for float32 ``x`` [..., K], in one kernel.

    By default the weight is decoded inside the reduction, so nothing float is materialized
    whatever the schedule (Cortex-M packages run unscheduled loops). For int4 in the CPU
    (blocked) layout the reduction runs over (byte row, nibble) and selects the nibble by its
    loop index, a constant once the 2-long loop is unrolled (a shift by ``k % 2 * 4``
    measured slower than int8 there). ``prologue`` (GPUs, plain layout) writes the decode as
    its own block before the matmul, the form DLight's GPU rules inline into their tiles."""
    from tvm import te, tirx

    n_dim = scales.shape[-1]
    lead = x.shape[:-1]

    def load(row, n):  # packed[row, n] in either layout (see block_columns)
        if len(packed.shape) == 2:
            return packed[row, n]
        block = packed.shape[-1]
        return packed[n // block, row, n % block]

    if prologue:
        return _decode_then_matmul(x, packed, scales, bits, group_size, lead, n_dim)
    if bits == 8:
        k = te.reduce_axis((0, x.shape[-1]), name="k")
        return te.compute((*lead, n_dim), lambda *i: te.sum(
            x[(*i[:-1], k)] * (load(k, i[-1]).astype("float32") * scales[k // group_size, i[-1]]),
            axis=k), name="int8_matmul")
    if len(packed.shape) == 2:
        return _int4_single_axis(x, packed, scales, group_size, lead, n_dim)
    rows = te.reduce_axis((0, packed.shape[-2]), name="k2")
    nibble = te.reduce_axis((0, 2), name="j")

    def body(*i):
        byte = load(rows, i[-1]).astype("int32")
        q = tirx.if_then_else(nibble == 0, tirx.bitwise_and(byte, tirx.const(15, "int32")),
                              tirx.shift_right(byte, tirx.const(4, "int32")))
        weight = (q - tirx.const(8, "int32")).astype("float32") \
            * scales[rows // (group_size // 2), i[-1]]
        return te.sum(x[(*i[:-1], rows * 2 + nibble)] * weight, axis=[rows, nibble])

    return te.compute((*lead, n_dim), body, name="int4_matmul")


def _int4_single_axis(x, packed, scales, group_size, lead, n_dim):
    """int4 in the plain layout over one reduction axis, the nibble shifted by ``k % 2 * 4``
    (an odd K reads only the low nibble of the last, padded row)."""
    from tvm import te, tirx

    k = te.reduce_axis((0, x.shape[-1]), name="k")

    def body(*i):
        shift = tirx.Cast("int32", k % 2) * tirx.const(4, "int32")
        byte = packed[k // 2, i[-1]].astype("int32")
        q = tirx.bitwise_and(tirx.shift_right(byte, shift), tirx.const(15, "int32"))
        weight = (q - tirx.const(8, "int32")).astype("float32") * scales[k // group_size, i[-1]]
        return te.sum(x[(*i[:-1], k)] * weight, axis=k)

    return te.compute((*lead, n_dim), body, name="int4_matmul")


def _decode_then_matmul(x, packed, scales, bits, group_size, lead, n_dim):
    """The plain [rows, N] layout on GPUs: a decode block producing the float weight, then the
    matmul block, in one kernel. DLight's GPU Matmul and GEMV rules inline such a decode
    prologue into their tiles (the pattern of MLC-LLM's quantized models), and the Matmul
    rule then tiles it like a float32 matmul; with the decode inside the reduction, a GEMM
    fell back to a plain reduction. The decoded weight is never stored."""
    from tvm import te, tirx

    k_dim = x.shape[-1]

    def decode(k, n):
        if bits == 8:
            q = packed[k, n].astype("float32")
        else:
            shift = tirx.Cast("int32", k % 2) * tirx.const(4, "int32")
            byte = packed[k // 2, n].astype("int32")
            q = (tirx.bitwise_and(tirx.shift_right(byte, shift), tirx.const(15, "int32"))
                 - tirx.const(8, "int32")).astype("float32")
        return q * scales[k // group_size, n]

    weight = te.compute((k_dim, n_dim), decode, name=f"int{bits}_decode")
    k = te.reduce_axis((0, k_dim), name="k")
    return te.compute((*lead, n_dim), lambda *i: te.sum(x[(*i[:-1], k)] * weight[k, i[-1]],
                                                        axis=k), name=f"int{bits}_matmul")

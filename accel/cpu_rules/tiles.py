"""Register-tile choice for the Contraction micro-kernel: rows x vectors of accumulators that fit
the target's vector register file, with the fewest loads per fused multiply-add."""

from __future__ import annotations

from .common import largest_divisor

#: Longest row tile: 14 rows already amortize a weight load; more only lengthens the code.
MAX_ROWS = 14


def vector_registers(target) -> int:
    """Architectural SIMD registers: 32 on AVX-512 and AArch64 NEON, else 16 (AVX2, SSE, armv7
    NEON's q registers)."""
    from tvm.target.codegen import target_has_features

    triple = str(target.attrs.get("mtriple", ""))
    wide = target_has_features("avx512f", target) or triple.startswith(("aarch64", "arm64"))
    return 32 if wide else 16


def max_vectors(target) -> int:
    """Output-channel vectors per row: 4 on AArch64 (4-float vectors); 2 elsewhere (measured
    best on AVX-512 and AVX2)."""
    triple = str(target.attrs.get("mtriple", ""))
    return 4 if triple.startswith(("aarch64", "arm64")) else 2


def fma_reads_memory(target) -> bool:
    """True on x86, whose FMAs can take the weight vector straight from memory."""
    return str(target.attrs.get("mtriple", "x86_64")).startswith(("x86_64", "i686", "i386"))


def pick_tile(channels: int, rows: int, *, lanes: int, registers: int, vectors: int,
              memory_operand: bool = False):
    """(channel tile, row tile) for ``channels`` output channels and ``rows`` output rows.

    Each row holds ``v`` accumulator vectors; a step of the reduction loads ``v`` weight
    vectors and broadcasts one input per row, so ``r * v + v + 1`` registers should fit
    (on AVX2, 7 rows x 2 vectors measured 2x slower than 4 x 2 for a 56-wide conv). When no
    row count that fits divides the rows well (widths 7 and 14 on AVX2), the weights are left
    to come from memory (``memory_operand``: x86 FMAs take one): 7 x 2 then measured 2x faster than
    2 x 2 or 7 x 1. Among the tiles, take the fewest loads per FMA, ``(r + v) / (r * v)``.
    """
    best = None
    for v in range(vectors, 0, -1):
        if channels % (lanes * v):
            continue
        r = _row_tile(rows, v, registers, memory_operand)
        key = ((r + v) / (r * v), -r * v)
        if best is None or key < best[0]:
            best = (key, lanes * v, r)
    if best is not None:
        return best[1], best[2]
    halves = [lanes >> i for i in range(lanes.bit_length()) if lanes >> i >= 4]
    c_tile = largest_divisor(channels, (*halves, *range(lanes - 1, 0, -1)))
    return c_tile, largest_divisor(rows, range(min(registers - 2, MAX_ROWS), 0, -1))


def _row_tile(rows: int, v: int, registers: int, memory_operand: bool) -> int:
    fits = largest_divisor(rows, range(min((registers - v - 1) // v, MAX_ROWS), 0, -1))
    if fits >= min(4, rows) or not memory_operand:
        return fits
    return max(fits, largest_divisor(rows, range(min((registers - 1) // v, MAX_ROWS), 0, -1)))

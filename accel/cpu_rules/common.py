"""Helpers shared by the CPU rules: vector shape from the target, loop and block queries."""

from __future__ import annotations

#: Parallelize an injective kernel only above this many elements (thread start-up costs more).
MIN_PARALLEL_ELEMENTS = 16384


def vector_lanes(target, bits: int = 32) -> int:
    """Elements of ``bits`` per SIMD register: 16 floats for AVX-512, 8 for AVX2, 4 for NEON
    and SSE. (TVM 0.27's ``llvm_get_vector_width`` answers 512 for every x86 CPU, Haswell
    included, so the width is read from the target's features instead.)"""
    from tvm.target.codegen import target_has_features

    width = 128
    if target_has_features("avx512f", target):
        width = 512
    elif target_has_features("avx", target):
        width = 256
    return width // bits


def extent(sch, loop) -> int | None:
    """A loop's constant extent, or None when it is symbolic."""
    from tvm import tirx

    ext = sch.get(loop).extent
    return int(ext.value) if isinstance(ext, tirx.IntImm) else None


def is_reduction(sch, block) -> bool:
    """True when the block has a reduction iterator."""
    return any(iv.iter_type == 2 for iv in sch.get(block).iter_vars)  # 2: CommReduce


def root_blocks(sch) -> list:
    """The blocks directly under the function's root block; none for a kernel without one
    (an extern call such as TopK's ``tvm.contrib.sort.topk`` is a single bare block)."""
    from tvm import s_tir

    try:
        root = sch.get_sblock("root")
    except s_tir.ScheduleError:
        return []
    return list(sch.get_child_blocks(root))


def is_identity_copy(sch, block) -> bool:
    """True for a block that stores ``B[i] = A[i]`` (e.g. a pad with zero padding)."""
    import tvm_ffi
    from tvm import tirx

    body = sch.get(block).body
    if not isinstance(body, tirx.BufferStore) or not is_load(body.value):
        return False
    return tvm_ffi.structural_equal(list(body.indices), list(body.value.indices))


def largest_divisor(n: int, candidates) -> int:
    """The first of ``candidates`` that divides ``n`` (1 when none does)."""
    return next((c for c in candidates if c <= n and n % c == 0), 1)


def is_load(expr) -> bool:
    """True for a buffer load (TVM 0.27 calls its class TensorLoad; tirx.BufferLoad is a
    factory function, so the class is tested by name)."""
    return type(expr).__name__ in ("BufferLoad", "TensorLoad")


def buffer_of(node):
    """The buffer a load or a buffer region refers to (``source`` in TVM 0.27, ``buffer``
    before)."""
    source = getattr(node, "source", None)
    return node.buffer if source is None else source

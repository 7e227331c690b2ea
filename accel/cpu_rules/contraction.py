"""Contraction: register-tiled, vectorized, parallel schedule for conv2d (dense and depthwise),
matmul, batch matmul and pooling: one reduction block whose last output axis is contiguous."""

from __future__ import annotations

from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

from .common import (
    buffer_of,
    extent,
    is_identity_copy,
    is_reduction,
    root_blocks,
    vector_lanes,
)
from .injective import schedule_spatial_block
from .tiles import fma_reads_memory, max_vectors, pick_tile, vector_registers


class Contraction(CPUScheduleRule):
    """Output-stationary micro-kernel: a (rows x vectors) accumulator tile stays in registers
    while the reduction runs; the fused epilogue (bias, BN, activation, residual) is computed
    on that tile before it is stored, so it stays in the same kernel."""

    def apply(self, func, target, _tunable):
        """Return a schedule, or None when the kernel is not a single-reduction contraction."""
        from tvm import s_tir

        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        try:
            return sch if _schedule(sch, target) else None
        except s_tir.ScheduleError:  # a shape this rule does not cover: leave it to the next
            return None


def _schedule(sch, target) -> bool:
    blocks = root_blocks(sch)
    reductions = [b for b in blocks if is_reduction(sch, b)]
    if len(reductions) != 1:
        return False
    main = reductions[0]
    split = _split_iters(sch, main)
    if split is None:
        return False
    position = [sch.get(b).name_hint for b in blocks].index(sch.get(main).name_hint)
    epilogue = _single_epilogue(sch, main, blocks[position + 1:])
    if epilogue is None:
        return False
    lanes = vector_lanes(target)
    w_outer, first_reduction = _tile(sch, main, split, lanes, target)
    sch.reverse_compute_at(epilogue, w_outer, preserve_unit_loops=True)
    _vectorize_last(sch, epilogue)
    init = sch.decompose_reduction(main, first_reduction)
    _vectorize_last(sch, init)
    _prepare_producers(sch, main, blocks[:position], lanes)
    return True


def _split_iters(sch, block):
    """(spatial count, reduction count) when the block's loops are spatial-then-reduction and
    it writes its spatial iterators in order; else None."""
    import tvm_ffi

    stmt = sch.get(block)
    kinds = [iv.iter_type for iv in stmt.iter_vars]
    n_s = kinds.count(0)
    if n_s == 0 or kinds != [0] * n_s + [2] * (len(kinds) - n_s):
        return None
    if len(sch.get_loops(block)) != len(kinds) or len(stmt.writes) != 1:
        return None
    indices = [r.min for r in stmt.writes[0].region]
    spatial = [iv.var for iv in stmt.iter_vars[:n_s]]
    if len(indices) != n_s or not tvm_ffi.structural_equal(indices, spatial):
        return None
    if any(extent(sch, loop) is None for loop in sch.get_loops(block)):
        return None  # symbolic shapes: the tile sizes below need constant extents
    if not any(_last_index_uses(region, spatial[-1]) for region in stmt.reads):
        return None  # e.g. a sum over the last axis: vectors along it would be gathers
    return n_s, len(kinds) - n_s


def _last_index_uses(region, var) -> bool:
    from tvm.tirx.analysis import undefined_vars

    return bool(region.region) and \
        any(v.same_as(var) for v in undefined_vars(region.region[-1].min))


def _single_epilogue(sch, main, consumers):
    """Inline the epilogue chain into its last block and return it (a write-back copy when the
    reduction writes the output directly); None when something after it is not elementwise."""
    if any(is_reduction(sch, b) for b in consumers):
        return None
    if not consumers:
        return sch.cache_write(main, 0, "global")
    for block in consumers[:-1]:
        sch.compute_inline(block)
    return consumers[-1]


def _tile(sch, main, split, lanes: int, target):
    """Tile [.., rows, channels] into [channels/C, .., rows/R, reductions.., R, C]; return the
    rows/R loop (where the epilogue goes) and the first reduction loop."""
    n_s, _ = split
    loops = sch.get_loops(main)
    spatial, reduce = list(loops[:n_s]), list(loops[n_s:])
    rows = spatial[-2:-1]
    c_tile, r_tile = pick_tile(extent(sch, spatial[-1]), extent(sch, rows[0]) if rows else 1,
                               lanes=lanes, registers=vector_registers(target),
                               vectors=max_vectors(target),
                               memory_operand=fma_reads_memory(target))
    c_outer, c_inner = sch.split(spatial[-1], factors=[None, c_tile])
    if rows:
        w_outer, w_inner = sch.split(rows[0], factors=[None, r_tile])
        head, tail = [c_outer, *spatial[:-2], w_outer], [w_inner, c_inner]
    else:
        w_outer, head, tail = c_outer, [c_outer], [c_inner]
    sch.reorder(*head, *reduce, *tail)
    parallel = head[:-1] if len(head) > 1 else head
    sch.parallel(sch.fuse(*parallel) if len(parallel) > 1 else parallel[0])
    if len(tail) == 2:
        sch.unroll(tail[0])
    sch.vectorize(tail[-1])
    return w_outer, reduce[0]


def _vectorize_last(sch, block) -> None:
    loops = sch.get_loops(block)
    ext = extent(sch, loops[-1])
    if ext is not None and ext > 1:
        sch.vectorize(loops[-1])


def _prepare_producers(sch, main, producers, lanes: int) -> None:
    """Inline plain copies (pads of zero width) and inputs read along the vector axis (the pad
    of a depthwise conv: a separate pass over it costs as much as the conv); vectorize and
    parallelize the rest in place (a dense conv's pad is read as broadcast scalars, and its
    bounds check would sit in the inner loop)."""
    for block in producers:
        if is_identity_copy(sch, block) or _read_along_vector_axis(sch, main, block):
            sch.compute_inline(block)
        else:
            schedule_spatial_block(sch, block, lanes)


def _read_along_vector_axis(sch, main, producer) -> bool:
    """True when ``main`` indexes the producer's last axis with its own last spatial iterator."""
    stmt, written = sch.get(main), buffer_of(sch.get(producer).writes[0])
    spatial = [iv.var for iv in stmt.iter_vars if iv.iter_type == 0]
    return any(_last_index_uses(region, spatial[-1]) for region in stmt.reads
               if buffer_of(region).same_as(written))

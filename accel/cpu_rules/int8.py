"""Int8Contraction: the int8 conv2d and matmul kernels of PackInt8Contractions, register-tiled
like Contraction, with the innermost (lanes x depth) step tensorized into the target's integer
dot-product instruction and the int32 epilogue (bias, rescale, activation, requantize) computed
on the accumulator tile before it is stored."""

from __future__ import annotations

from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

from .common import extent, root_blocks
from .contraction import _single_epilogue, _vectorize_last
from .injective import schedule_spatial_block
from .int8_intrin import AVX2_S8, AVX2_U8, SDOT, VNNI, register
from .tiles import fma_reads_memory, max_vectors, pick_tile, vector_registers

_KINDS = {k.name: k for k in (VNNI, AVX2_U8, AVX2_S8, SDOT)}
_ANNOTATION = "accel.int8_dot"  # accel.passes._int8_kernels.ANNOTATION (not imported: no relax)


class Int8Contraction(CPUScheduleRule):
    """Schedules a kernel whose reduction block carries the ``accel.int8_dot`` annotation."""

    def apply(self, func, target, _tunable):
        """Return a schedule, or None when the kernel is not one of the packed int8 kernels."""
        from tvm import s_tir

        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        blocks = root_blocks(sch)
        marked = [b for b in blocks if _ANNOTATION in sch.get(b).annotations]
        if len(marked) != 1:
            return None
        kind = _KINDS.get(str(sch.get(marked[0]).annotations[_ANNOTATION]))
        if kind is None:
            return None
        try:
            _schedule(sch, target, kind, blocks, marked[0])
        except (s_tir.ScheduleError, _NotCovered):
            return None
        return sch


def _schedule(sch, target, kind, blocks, main) -> None:
    position = [sch.get(b).name_hint for b in blocks].index(sch.get(main).name_hint)
    epilogue = _single_epilogue(sch, main, blocks[position + 1:])
    if epilogue is None:
        raise _NotCovered
    loops = sch.get_loops(main)
    n_reduce = sum(1 for iv in sch.get(main).iter_vars if iv.iter_type == 2)
    spatial, reduce = list(loops[:-n_reduce]), list(loops[-n_reduce:])
    rows = spatial[-2] if len(spatial) >= 2 else None
    c_tile, r_tile = pick_tile(extent(sch, spatial[-1]), extent(sch, rows) if rows else 1,
                               lanes=kind.lanes, registers=vector_registers(target),
                               vectors=max_vectors(target),
                               memory_operand=fma_reads_memory(target))
    if c_tile % kind.lanes:
        raise _NotCovered
    o_outer, o_vec, o_lane = sch.split(spatial[-1], [None, c_tile // kind.lanes, kind.lanes])
    if rows is not None:
        r_outer, r_inner = sch.split(rows, [None, r_tile])
        head = [o_outer, *spatial[:-2], r_outer]
    else:
        r_inner, head = None, [o_outer]
    tail = [o_vec, o_lane] if r_inner is None else [r_inner, o_vec, o_lane]
    sch.reorder(*head, *reduce[:-1], *tail, reduce[-1])
    parallel = head[:-1] if len(head) > 1 else head
    sch.parallel(sch.fuse(*parallel) if len(parallel) > 1 else parallel[0])
    sch.reverse_compute_at(epilogue, head[-1], preserve_unit_loops=True)
    _vectorize_last(sch, epilogue)
    init = sch.decompose_reduction(main, reduce[0])
    _vectorize_last(sch, init)
    sch.tensorize(o_lane, register(kind))
    for loop in tail[:-1]:
        sch.unroll(loop)
    for block in blocks[:position]:
        schedule_spatial_block(sch, block, kind.lanes * 4)


class _NotCovered(Exception):
    """A shape of the packed kernel this rule does not tile."""

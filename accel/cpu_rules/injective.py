"""Injective: fallback for elementwise and injective kernels: parallel outer, vectorized inner."""

from __future__ import annotations

from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

from .common import MIN_PARALLEL_ELEMENTS, extent, is_reduction, root_blocks, vector_lanes

#: Intrinsics TVM 0.27's LLVM backend cannot lower once vectorized ("unknown intrinsic").
_SCALAR_ONLY = frozenset({"tirx.sinh", "tirx.cosh", "tirx.asinh", "tirx.acosh", "tirx.atanh"})


def calls_scalar_only(stmt) -> bool:
    """Whether a block calls an intrinsic that must stay scalar."""
    import tvm_ffi
    from tvm import ir

    found = []

    def visit(call):
        if getattr(call.op, "name", "") in _SCALAR_ONLY:
            found.append(call)

    tvm_ffi.structural_walk(stmt, [(ir.Call, visit)])
    return bool(found)


def schedule_spatial_block(sch, block, lanes: int) -> None:
    """Vectorize the innermost loop by ``lanes`` and parallelize the rest when it pays off."""
    loops = list(sch.get_loops(block))
    exts = [extent(sch, lp) for lp in loops]
    if not loops or None in exts:
        return
    inner = None
    if exts[-1] >= lanes and exts[-1] % lanes == 0:
        outer, inner = sch.split(loops[-1], factors=[None, lanes])
        loops[-1] = outer
    elif 2 <= exts[-1] <= lanes:
        inner = loops.pop()
    total = 1
    for e in exts:
        total *= e
    if total >= MIN_PARALLEL_ELEMENTS and loops:
        sch.parallel(sch.fuse(*loops) if len(loops) > 1 else loops[0])
    if inner is not None and not calls_scalar_only(sch.get(block)):
        sch.vectorize(inner)


class Injective(CPUScheduleRule):
    """Inline what can be inlined, then vectorize and parallelize each remaining spatial block."""

    def apply(self, func, target, _tunable):
        """Return a schedule, or None when the kernel has a reduction (other rules own those)."""
        from tvm import s_tir
        from tvm.s_tir.dlight.analysis import normalize_prim_func
        from tvm.s_tir.dlight.base import try_inline

        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if infos is None or any(not info.is_injective() for info in infos):
            return None
        try_inline(sch, infos)
        lanes = vector_lanes(target)
        for block in root_blocks(sch):
            if is_reduction(sch, block):
                return None
            schedule_spatial_block(sch, block, lanes)
        return sch

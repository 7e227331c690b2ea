"""A schedule rule for C kernels: inline padding, fold epilogues into the loop nest (less RAM)."""

from __future__ import annotations

import contextlib


def inline_rule():
    """A DLight rule: inline injective blocks, then compute each reduction's epilogue per output
    element, so padded copies and pre-activation tensors are never materialized."""
    from tvm import s_tir
    from tvm.s_tir.dlight.analysis import normalize_prim_func
    from tvm.s_tir.dlight.base import ScheduleRule, try_inline

    @ScheduleRule.from_callable("AccelMicroInline")
    def rule(func, target, tunable):
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if infos is None:
            return None
        remaining = try_inline(sch, [i for i in infos if not i.is_reduction()])
        reductions = [i for i in infos if i.is_reduction()]
        for red in reductions:
            _epilogue_at(sch, red, remaining)
        return sch

    return rule


def _epilogue_at(sch, red, remaining) -> None:
    """Move the reduction's consumer under its innermost spatial loop."""
    spatial = 0
    for it in red.iters:
        if it.kind != "S":
            break
        spatial += 1
    if spatial == 0:
        return
    loops = sch.get_loops(red.block_rv)
    for consumer in sch.get_consumers(red.block_rv):
        try:
            sch.reverse_compute_at(consumer, loops[spatial - 1], preserve_unit_loops=True)
        except Exception:  # not a per-element epilogue (e.g. a broadcast): leave it
            continue
    if len(loops) > spatial:  # the init before the reduction loops, not a branch inside them
        with contextlib.suppress(Exception):  # no decomposable reduction: keep the init in place
            sch.decompose_reduction(red.block_rv, loops[spatial])

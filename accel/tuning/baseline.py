"""The untuned baseline: each task's default schedule, measured and stored as a tuning record.

Compiles take the best record of a kernel. With the default schedule among the records, a
tuned kernel is never slower than the untuned one it replaces, even after a handful of trials.
"""

from __future__ import annotations


def default_schedule(mod, target, family: str):
    """The schedule the family's default rules give a task's kernel, or None if none applies."""
    from tvm import s_tir

    from ..schedule import dlight_rules

    func = mod["main"]
    for rule in dlight_rules(family):
        space = rule.apply(func, target, False)
        if isinstance(space, list):
            space = space[0] if space else None
        if isinstance(space, s_tir.Schedule):
            return space
    return None


def measure_defaults(contexts, *, family: str, target, db, builder, runner) -> int:
    """Build and run every task's default schedule; commit each that ran; return how many."""
    from tvm.s_tir import meta_schedule as ms

    candidates = []
    for ctx in contexts:
        sch = default_schedule(ctx.mod, target, family)
        if sch is not None:
            candidates.append((ctx, sch))
    if not candidates:
        return 0
    built = builder.build([ms.builder.BuilderInput(sch.mod, target) for _, sch in candidates])
    device = "cpu" if target.kind.name in ("llvm", "c") else target.kind.name
    inputs = [ms.runner.RunnerInput(b.artifact_path, device_type=device,
                                    args_info=ms.arg_info.ArgInfo.from_prim_func(
                                        ctx.mod["main"]))
              for (ctx, _), b in zip(candidates, built, strict=True) if b.error_msg is None]
    ok = [c for c, b in zip(candidates, built, strict=True) if b.error_msg is None]
    committed = 0
    for (ctx, sch), future in zip(ok, runner.run(inputs), strict=True):
        result = future.result()
        if result.error_msg is None and result.run_secs:
            workload = db.commit_workload(ctx.mod)
            db.commit_tuning_record(ms.database.TuningRecord(
                sch.trace, workload, result.run_secs, target,
                ms.arg_info.ArgInfo.from_prim_func(ctx.mod["main"])))
            committed += 1
    return committed

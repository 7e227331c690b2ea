"""ApplyTuningRecords: schedule each fused kernel from the best matching tuning record."""

from __future__ import annotations


def ApplyTuningRecords(database):  # noqa: N802 - passes are named like TVM's
    """A module pass applying ``database`` (a MetaSchedule Database) to every kernel it covers.

    Kernels with a record get MetaSchedule's best schedule and are marked ``tirx.is_scheduled``,
    so the default schedule rules that run next leave them alone.
    """
    import tvm
    from tvm import relax

    @tvm.transform.module_pass(opt_level=0, name="accel.ApplyTuningRecords")
    def apply(mod, _ctx):
        with database:
            return relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)

    return apply

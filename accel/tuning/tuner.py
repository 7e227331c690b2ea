"""accel.tune: MetaSchedule over a model's fused kernels, in resumable rounds, here or on a farm.

A run is a loop of rounds. Each round gives every unfinished task one scheduler step (a batch
of candidates chosen by the XGBoost cost model and evolutionary search), measured locally or on
every device under an RPC key. MetaSchedule appends each measured record to the work dir's JSON
database as it goes, so a killed run loses at most a torn last line (skipped on resume); trial
counts, per-task budgets and elapsed time are recomputed from the database and the state file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from pathlib import Path

from .. import env
from ..errors import UsageError
from ..model import load_model, source_digest
from ..target import TargetSpec, get_target
from . import database, farm
from .options import TuneOptions
from .workdir import WorkDir

_TUNABLE = ("x86-cpu", "arm-cpu", "cuda", "mali")
#: A task whose first this-many trials all failed (a kernel crashing on random inputs, say)
#: is not measured again: failures are recorded, never retried forever.
_MAX_FAILED_TRIALS = 3


@dataclasses.dataclass(frozen=True)
class Task:
    """One kernel to tune: its name, the structural hash the database files use, its weight."""

    name: str
    shash: str
    weight: float


@dataclasses.dataclass(frozen=True)
class TuneReport:
    """What a run did and found."""

    work_dir: Path
    target: str
    tasks: tuple[dict, ...]
    trials: int
    failed_trials: int
    elapsed_s: float
    estimated_ms: float | None
    stopped: str
    lost_devices: tuple[str, ...]
    records_dir: Path | None
    plot: Path | None


def tune(model, target: str | TargetSpec | None = None, *, options: TuneOptions,
         example_inputs=None, progress=print) -> TuneReport:
    """Tune a model's kernels for a target; save the best records where compiles find them.

    Parameters
    ----------
    model : path, onnx.ModelProto, torch.nn.Module or ExportedProgram
        As for :func:`accel.compile`.
    target : str or TargetSpec, optional
        A named target; ``None`` means this host.
    options : TuneOptions
        Budgets, work dir, resume, RPC farm.
    progress : callable
        Receives one line of text per round.
    """
    spec = get_target(target)
    if spec.family not in _TUNABLE:
        raise UsageError(f"target '{spec.name}' ({spec.family}) cannot be tuned",
                         hint=f"tunable families: {', '.join(_TUNABLE)}")
    digest, prepared = source_digest(model, example_inputs=example_inputs)
    work = WorkDir(options.work_dir or _default_work_dir(spec, digest))
    with work.locked():
        state = _start_state(work, spec, digest, options)
        loaded = load_model(prepared, example_inputs=example_inputs,
                            options=options.compile_options)
        session = _Session(spec, options, work, state, progress)
        session.prepare(loaded)
        return session.run()


def _default_work_dir(spec: TargetSpec, digest: str) -> Path:
    return env.cache_dir() / "tuning" / f"{spec.name}-{digest[:16]}"


def _start_state(work: WorkDir, spec: TargetSpec, digest: str, options: TuneOptions) -> dict:
    state = work.read_state()
    if state is None and options.resume:
        raise UsageError(f"{work.path}: nothing to resume (no earlier run there)")
    if state is not None and not options.resume:
        raise UsageError(f"{work.path} holds an earlier tuning run",
                         hint="pass --resume to continue it, or choose another --work-dir")
    fingerprint = spec.fingerprint()
    if state is not None:
        for key, now in (("model", digest), ("fingerprint", fingerprint)):
            if state[key] != now:
                raise UsageError(f"{work.path}: the earlier run tuned another {key} "
                                 f"({state[key][:16]}, now {now[:16]}); use another --work-dir")
        database.read(work.path, repair=True)  # drop torn lines before TVM reads the files
        for key, value in (("trials", options.trials), ("time_budget_s", options.time_budget_s),
                           ("max_trials_per_task", options.max_trials_per_task)):
            if value is not None:  # a resume may extend (or tighten) the budgets
                state[key] = value
        return state
    return {"model": digest, "target": spec.name, "fingerprint": fingerprint,
            "trials": options.trials, "time_budget_s": options.time_budget_s,
            "max_trials_per_task": options.max_trials_per_task, "elapsed_s": 0.0}


class _Session:
    """One tuning process over a work dir: the tasks, the MetaSchedule objects, the loop."""

    def __init__(self, spec: TargetSpec, options: TuneOptions, work: WorkDir, state: dict,
                 progress):
        self.spec, self.options, self.work, self.state = spec, options, work, state
        self.progress = progress
        self.started = time.perf_counter()
        self.base_elapsed = float(state["elapsed_s"])
        self.devices = farm.require_devices(options.rpc) if options.rpc else []
        self.lost: list[str] = []
        self.exhausted: set[str] = set()

    # ------------------------------------------------------------------ set-up

    def prepare(self, model) -> None:
        """Run the compile pipeline up to fusion, extract the tasks, build MetaSchedule's parts."""
        from tvm.s_tir import meta_schedule as ms

        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
        self.target = self.spec.tvm_target()
        extracted = [t for t in ms.relax_integration.extract_tasks(self._fused(model.mod),
                                                                   self.target)
                     if not _prescheduled(t)]
        if not extracted:
            raise UsageError(f"{model.source}: no kernel to tune for target '{self.spec.name}'")
        strategy = ms.search_strategy.EvolutionarySearch(
            population_size=self.options.population,
            init_min_unmeasured=min(50, self.options.population))
        self.contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            extracted, str(self.work.path), strategy=strategy, num_threads=_threads(),
            seed=self.options.seed)
        self.tasks = [Task(c.task_name, _shash(c.mod), w)
                      for c, w in zip(self.contexts, weights, strict=True)]
        self.db = ms.database.JSONDatabase(work_dir=str(self.work.path))
        self.cost_model = self._cost_model()
        workers = max(1, len(self.devices)) if self.options.rpc else 1
        from .build import builder

        self.builder = builder(self.spec, max_workers=_threads())
        self.runner = farm.runner(self.options.rpc, workers=workers)
        self.state["tasks"] = [dataclasses.asdict(t) for t in self.tasks]
        self.work.write_state(self.state)

    def _fused(self, mod):
        import tvm

        from ..pipeline import tuning_passes

        with self.target:
            phases = tuning_passes(self.spec, self.target, self.options.compile_options)
            with tvm.transform.PassContext(opt_level=3):
                for _, passes in phases:
                    mod = tvm.transform.Sequential(passes)(mod)
        return mod

    def _cost_model(self):
        from tvm.s_tir import meta_schedule as ms

        model = ms.cost_model.CostModel.create("xgb", num_tuning_cores=_threads())
        saved = self.work.path / "accel-cost-model.tar"
        if saved.is_file():
            try:
                model.load(str(saved))
            except Exception as exc:  # a model torn by a kill: start over, records stay
                self.progress(f"warning: saved cost model unreadable ({exc}); retraining")
        return model

    # ------------------------------------------------------------------ the loop

    def run(self) -> TuneReport:
        """Tune round after round until a budget is spent or every task is finished."""
        if "baseline" not in self.state:
            self._measure_baseline()
        while (why := self._why_stop()) is None:
            self._round()
        self.progress(f"stopped: {why}")
        return self._finish(why)

    def _measure_baseline(self) -> None:
        from .baseline import measure_defaults

        count = measure_defaults(self.contexts, family=self.spec.schedule, target=self.target,
                                 db=self.db, builder=self.builder, runner=self.runner)
        self.state["baseline"] = count
        self.work.write_state(self.state)
        estimate = self._estimate(database.read(self.work.path))
        shown = f"{estimate:.3f} ms" if estimate is not None else "n/a"
        self.progress(f"default schedules measured for {count}/{len(self.tasks)} kernels "
                      f"(est. {shown}): tuning only ever improves on them")

    def _elapsed(self) -> float:
        return self.base_elapsed + (time.perf_counter() - self.started)

    def _counts(self) -> dict[str, int]:
        return database.read(self.work.path).trials()

    def _open_tasks(self, counts: dict[str, int]) -> list[int]:
        cap = self.state["max_trials_per_task"] or self._total()
        return [i for i, t in enumerate(self.tasks)
                if counts.get(t.shash, 0) < cap and t.shash not in self.exhausted]

    def _total(self) -> int:
        return TuneOptions(trials=self.state["trials"],
                           time_budget_s=self.state["time_budget_s"]).total_trials(
                               len(self.tasks))

    def _why_stop(self) -> str | None:
        counts = self._counts()
        if sum(counts.get(t.shash, 0) for t in self.tasks) >= self._total():
            return f"trial budget reached ({self._total()} trials)"
        budget = self.state["time_budget_s"]
        if budget is not None and self._elapsed() >= budget:
            return f"time budget reached ({_duration(budget)})"
        if not self._open_tasks(counts):
            return "every task is finished (per-task cap reached or search space exhausted)"
        if self.options.rpc and not self._live_devices():
            return f"no device left under key '{self.options.rpc.key}'"
        return None

    def _live_devices(self) -> list[str]:
        try:
            live = farm.devices(self.options.rpc)  # a server that dies drops off the tracker
        except farm.FarmError:
            live = []
        self.lost = sorted(set(self.lost) | (set(self.devices) - set(live)))
        return live

    def _round(self) -> None:
        from tvm.s_tir import meta_schedule as ms

        before = self._counts()
        open_ids = self._open_tasks(before)
        done = sum(before.get(t.shash, 0) for t in self.tasks)
        per_iter = self.options.trials_per_iter
        trials = min(self._total() - done, per_iter * len(open_ids))
        cap = self.state["max_trials_per_task"] or self._total()
        per_task = max(cap - before.get(self.tasks[i].shash, 0) for i in open_ids)
        ms.tune.tune_tasks(
            tasks=[self.contexts[i].clone() for i in open_ids],
            task_weights=[self.tasks[i].weight for i in open_ids],
            work_dir=str(self.work.path), max_trials_global=trials,
            max_trials_per_task=min(per_task, trials), num_trials_per_iter=per_iter,
            builder=self.builder, runner=self.runner, database=self.db,
            cost_model=self.cost_model, task_scheduler="gradient")
        self._after_round(before, open_ids)

    def _after_round(self, before: dict[str, int], open_ids: list[int]) -> None:
        snapshot = database.read(self.work.path)
        counts = snapshot.trials()
        best = snapshot.best()
        for i in open_ids:
            task, n = self.tasks[i], counts.get(self.tasks[i].shash, 0)
            if n == before.get(task.shash, 0):  # MetaSchedule has no candidate left for it
                self.exhausted.add(task.shash)
            elif n >= _MAX_FAILED_TRIALS and task.shash not in best:
                self.exhausted.add(task.shash)
                self.progress(f"warning: every trial of {task.name} failed ({n}; see "
                              f"{self.work.path / 'logs'}): no longer tuned, it keeps its "
                              "default schedule")
        self._save_cost_model()
        point = {"trials": sum(counts.get(t.shash, 0) for t in self.tasks),
                 "elapsed_s": self._elapsed(), "estimated_ms": self._estimate(snapshot),
                 "failed": snapshot.failures(),
                 "untimed": sum(t.shash not in best for t in self.tasks)}
        self.work.append_history(point)
        self.state["elapsed_s"] = point["elapsed_s"]
        self.work.write_state(self.state)
        self.progress(self._line(point, counts))
        if self.options.rpc:
            self._live_devices()

    def _save_cost_model(self) -> None:
        final = self.work.path / "accel-cost-model.tar"
        tmp = final.with_name(final.name + ".tmp")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # xgboost's note about its file format
                self.cost_model.save(str(tmp))
            os.replace(tmp, final)
        except Exception as exc:  # the model only speeds up a resume; records are what count
            self.progress(f"warning: could not save the cost model ({exc})")

    def _estimate(self, snapshot: database.Database) -> float | None:
        """Weighted sum of the best times in ms, over the kernels that have a valid record."""
        best = snapshot.best()
        timed = [t for t in self.tasks if t.shash in best]
        return 1e3 * sum(t.weight * best[t.shash] for t in timed) if timed else None

    def _line(self, point: dict, counts: dict[str, int]) -> str:
        total, done = self._total(), point["trials"]
        rate = point["elapsed_s"] / max(done, 1)
        eta = rate * (total - done)
        if self.state["time_budget_s"] is not None:
            eta = min(eta, self.state["time_budget_s"] - point["elapsed_s"])
        untimed = point["untimed"]
        estimate = (f"{point['estimated_ms']:.3f} ms" if point["estimated_ms"] is not None
                    else "n/a")
        if untimed:
            estimate += f" ({untimed} kernel(s) without a valid record left out)"
        open_tasks = len(self._open_tasks(counts))
        return (f"trials {done}/{total if total < 10_000 * len(self.tasks) else '-'}  "
                f"tasks open {open_tasks}/{len(self.tasks)}  failed {point['failed']}  "
                f"best est. {estimate}  elapsed {_duration(point['elapsed_s'])}  "
                f"ETA {_duration(max(eta, 0))}")

    # ------------------------------------------------------------------ the end

    def _finish(self, why: str) -> TuneReport:
        from .plot import plot_history
        from .store import save_records

        snapshot = database.read(self.work.path)
        counts, best = snapshot.trials(), snapshot.best()
        tasks = tuple({"name": t.name, "weight": t.weight, "trials": counts.get(t.shash, 0),
                       "best_us": round(best[t.shash] * 1e6, 3) if t.shash in best else None}
                      for t in self.tasks)
        records = save_records(self.spec, self.work.path, self.options.compile_options)
        plot = plot_history(self.work.history(), self.work.path / "tuning-curve.png",
                            title=f"{self.spec.name}: {self.work.path.name}")
        return TuneReport(self.work.path, self.spec.name, tasks,
                          sum(t["trials"] for t in tasks), snapshot.failures(), self._elapsed(),
                          self._estimate(snapshot), why, tuple(self.lost), records, plot)


def _shash(mod) -> str:
    import tvm_ffi

    return str(tvm_ffi.structural_hash(mod))


def _threads() -> int:
    return max(1, os.cpu_count() or 1)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _prescheduled(task) -> bool:
    """Whether the pipeline already scheduled this kernel (the fused attention kernel): MetaSchedule
    is given only the kernels that the default rules would schedule."""
    func = task.dispatched[0]["main"]
    return bool(func.attrs and func.attrs.get("tirx.is_scheduled", False))

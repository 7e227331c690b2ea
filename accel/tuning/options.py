"""Tuning options: a frozen dataclass, with the duration and RPC-address parsing done once."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..errors import UsageError
from ..options import CompileOptions

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class RPCOptions:
    """Where the device farm is: a TVM RPC tracker and the device key to measure on."""

    tracker_host: str
    tracker_port: int
    key: str
    #: Seconds one measurement session may take before the trial counts as failed.
    session_timeout_s: int = 60

    @classmethod
    def parse(cls, tracker: str, key: str | None) -> RPCOptions:
        """From ``HOST:PORT`` and a key; errors say what is wrong."""
        host, sep, port = tracker.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise UsageError(f"bad --rpc-tracker '{tracker}'", hint="expected HOST:PORT")
        if not key:
            raise UsageError("--rpc-tracker needs --rpc-key (the device key servers registered)")
        return cls(host, int(port), key)


@dataclasses.dataclass(frozen=True)
class TuneOptions:
    """One tuning run. Budgets: ``trials`` in total, ``time_budget_s`` of wall time, or both."""

    trials: int | None = None
    time_budget_s: float | None = None
    #: No task gets more trials than this (default: no cap below ``trials``).
    max_trials_per_task: int | None = None
    work_dir: Path | None = None
    resume: bool = False
    rpc: RPCOptions | None = None
    #: Candidates measured per scheduler step; a round is one step per unfinished task.
    trials_per_iter: int = 8
    #: Evolutionary search population (512 costs about 22 s per step on 2 cores, 128 about 3).
    population: int = 128
    seed: int | None = None
    #: The compile options whose pipeline (up to fusion) defines the kernels that are tuned.
    compile_options: CompileOptions = dataclasses.field(default_factory=CompileOptions)

    def __post_init__(self):
        for name in ("trials", "max_trials_per_task", "trials_per_iter", "population"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {value}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise UsageError(f"the time budget must be positive, got {self.time_budget_s} s")
        if self.work_dir is not None:
            object.__setattr__(self, "work_dir", Path(self.work_dir))

    def total_trials(self, n_tasks: int) -> int:
        """The trial budget: as given; with only a time budget, effectively unbounded."""
        if self.trials is not None:
            return int(self.trials)
        return 10_000 * n_tasks if self.time_budget_s is not None else 64 * n_tasks


def parse_duration(text: str | None) -> float | None:
    """``90``, ``90s``, ``15m``, ``8h``, ``1.5d`` -> seconds; None stays None."""
    if text is None:
        return None
    match = _DURATION.match(str(text).lower())
    if not match:
        raise UsageError(f"bad duration '{text}'", hint="e.g. 90s, 15m, 8h")
    return float(match.group(1)) * _UNIT_S[match.group(2)]

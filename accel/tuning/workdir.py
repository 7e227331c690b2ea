"""A tuning work directory: its lock, its state file, its progress history.

Layout: MetaSchedule's database files and ``logs/``, plus ``accel-tune.json`` (what is being
tuned, and the budgets: so that ``--resume`` continues the same run) and ``accel-history.jsonl``
(one line per round: time, trials, estimated latency; the plot is drawn from it).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from ..errors import UsageError
from ..fsutil import atomic_write_bytes, canonical_json
from . import database

STATE = "accel-tune.json"
HISTORY = "accel-history.jsonl"
LOCK = "accel-tune.lock"
STATE_VERSION = 1


class TunerBusyError(UsageError):
    """Another tuner holds the work directory."""

    exit_code = 13


class WorkDir:
    """One tuning run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextlib.contextmanager
    def locked(self):
        """Hold the work dir's lock for the whole run; a second tuner is refused at once."""
        import filelock

        self.path.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path / LOCK), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise TunerBusyError(f"{self.path}: another tuner is using this work dir (lock "
                                 f"{self.path / LOCK}); wait for it or pick another "
                                 "--work-dir") from None
        try:
            yield self
        finally:
            lock.release()

    def has_records(self) -> bool:
        """Whether an earlier run measured anything here."""
        return (self.path / database.RECORDS).is_file() and \
            (self.path / database.RECORDS).stat().st_size > 0

    def read_state(self) -> dict | None:
        """The saved run description, or None for a fresh folder."""
        path = self.path / STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
        except ValueError:
            raise UsageError(f"{path}: corrupt tuning state; start a new --work-dir") from None
        if state.get("version") != STATE_VERSION:
            raise UsageError(f"{path}: tuning state version {state.get('version')} is not "
                             f"{STATE_VERSION}; start a new --work-dir")
        return state

    def write_state(self, state: dict) -> None:
        """Save the run description atomically."""
        atomic_write_bytes(self.path / STATE,
                           canonical_json({**state, "version": STATE_VERSION}).encode())

    def append_history(self, entry: dict) -> None:
        """Add one progress point (a line, flushed: a kill loses at most a torn last line)."""
        with open(self.path / HISTORY, "a") as f:
            f.write(json.dumps({"time": time.time(), **entry}) + "\n")
            f.flush()

    def history(self) -> list[dict]:
        """Every progress point so far (torn lines skipped)."""
        path = self.path / HISTORY
        points = []
        for line in path.read_text().splitlines() if path.is_file() else ():
            with contextlib.suppress(ValueError):
                points.append(json.loads(line))
        return points

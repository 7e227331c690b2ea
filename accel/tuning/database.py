"""MetaSchedule's JSON database files, read and rewritten without TVM: check, count, prune, merge.

A database is two JSON-lines files in one folder: ``database_workload.json`` (one line per
workload, ``[structural hash, base64 module]``) and ``database_tuning_record.json`` (one line
per measured trial, ``[workload line index, [trace, run_secs, target, args_info]]``). TVM
appends to both as it measures, so a killed tuner can leave a torn last line.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

from ..fsutil import atomic_write_bytes

WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"
#: What MetaSchedule records as the run time of a trial that failed to build or run.
FAILED_SECS = 1e9


@dataclasses.dataclass(frozen=True)
class Database:
    """The parsed files: workloads (hash, line) in order, and records (workload index, line)."""

    workloads: tuple[tuple[str, str], ...]
    records: tuple[tuple[int, str], ...]

    def trials(self) -> dict[str, int]:
        """Measured trials (failed ones included) per workload hash."""
        counts = dict.fromkeys((h for h, _ in self.workloads), 0)
        for index, _ in self.records:
            counts[self.workloads[index][0]] += 1
        return counts

    def best(self) -> dict[str, float]:
        """The best mean run time in seconds per workload hash (failed trials ignored)."""
        found: dict[str, float] = {}
        for index, line in self.records:
            secs = mean_secs(line)
            shash = self.workloads[index][0]
            if secs < FAILED_SECS and secs < found.get(shash, float("inf")):
                found[shash] = secs
        return found

    def failures(self) -> int:
        """How many trials failed to build or run."""
        return sum(mean_secs(line) >= FAILED_SECS for _, line in self.records)


def mean_secs(record_line: str) -> float:
    """The mean measured time of one record line; failures count as FAILED_SECS or more."""
    secs = json.loads(record_line)[1][1]
    values = [float(s) for s in secs or ()]
    return sum(values) / len(values) if values else float("inf")


def read(folder: str | Path, *, repair: bool = False) -> Database:
    """Parse a database folder, skipping (and warning about) corrupt or torn lines.

    With ``repair``, the files are rewritten without those lines (atomically), so that TVM,
    which stops at the first bad line, can open them again.
    """
    folder = Path(folder)
    workloads, bad_w = _lines(folder / WORKLOADS, _workload_line)
    records, bad_r = _lines(folder / RECORDS, lambda line: _record_line(line, len(workloads)))
    for path, bad in ((folder / WORKLOADS, bad_w), (folder / RECORDS, bad_r)):
        if bad:
            warnings.warn(f"{path}: skipped {bad} corrupt or truncated line(s)", stacklevel=2)
    db = Database(tuple(workloads), tuple(records))
    if repair and (bad_w or bad_r):
        write(folder, db)
    return db


def write(folder: str | Path, db: Database) -> None:
    """Write both files atomically."""
    folder = Path(folder)
    atomic_write_bytes(folder / WORKLOADS, _join(line for _, line in db.workloads))
    atomic_write_bytes(folder / RECORDS, _join(line for _, line in db.records))


def pruned(db: Database) -> Database:
    """Only the best successful record of each workload, and only workloads that have one."""
    best: dict[int, tuple[float, str]] = {}
    for index, line in db.records:
        secs = mean_secs(line)
        if secs < FAILED_SECS and secs < best.get(index, (float("inf"), ""))[0]:
            best[index] = (secs, line)
    return _renumbered(db.workloads, [(i, line) for i, (_, line) in sorted(best.items())])


def merged(*dbs: Database) -> Database:
    """All records of several databases over one workload table (workloads matched by hash)."""
    workloads: list[tuple[str, str]] = []
    index_of: dict[str, int] = {}
    records: list[tuple[int, str]] = []
    for db in dbs:
        for old_index, line in db.records:
            shash, wl_line = db.workloads[old_index]
            if shash not in index_of:
                index_of[shash] = len(workloads)
                workloads.append((shash, wl_line))
            records.append((index_of[shash], _reindexed(line, index_of[shash])))
    return Database(tuple(workloads), tuple(records))


def _renumbered(workloads, records) -> Database:
    return merged(Database(tuple(workloads), tuple(records)))


def _reindexed(line: str, index: int) -> str:
    value = json.loads(line)
    value[0] = index
    return json.dumps(value, separators=(",", ":"))


def _lines(path: Path, parse) -> tuple[list, int]:
    if not path.is_file():
        return [], 0
    good, bad = [], 0
    for raw in path.read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        try:
            good.append(parse(raw.decode()))
        except (ValueError, TypeError, IndexError, UnicodeDecodeError):
            bad += 1
    return good, bad


def _workload_line(line: str) -> tuple[str, str]:
    value = json.loads(line)
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str)
                                                                 for v in value)):
        raise ValueError("not a workload line")
    return value[0], line


def _record_line(line: str, n_workloads: int) -> tuple[int, str]:
    value = json.loads(line)
    index = value[0]
    if not (isinstance(index, int) and 0 <= index < n_workloads and len(value[1]) == 4):
        raise ValueError("not a record line")
    mean_secs(line)
    return index, line


def _join(lines) -> bytes:
    text = "\n".join(lines)
    return (text + "\n").encode() if text else b""

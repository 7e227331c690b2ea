"""The record store: ``<root>/<target>/<fingerprint>/`` pruned databases with a manifest.

``accel tune`` saves into the user root; ``accel logs`` lists, shows, prunes and merges. Every
write happens under the folder's lock and replaces files atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

from ..errors import UsageError
from ..fsutil import atomic_write_bytes, canonical_json, sha256_file
from ..versions import versions
from . import database
from .records import MANIFEST, roots, user_root

MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RecordSet:
    """One record folder, as ``accel logs list`` shows it."""

    path: Path
    target: str
    fingerprint: str
    workloads: int
    manifest: dict


def save_records(spec, work_dir: Path, compile_options=None,
                 root: str | os.PathLike | None = None) -> Path | None:
    """Merge a work dir's best records into the user's store for the target; return the folder."""
    pruned = database.pruned(database.read(work_dir))
    if not pruned.records:
        return None
    folder = user_root(root or getattr(compile_options, "tuning_logs", None)) / spec.name / \
        spec.fingerprint()
    with _locked(folder):
        existing = database.read(folder)
        merged = database.pruned(database.merged(existing, pruned))
        database.write(folder, merged)
        _write_manifest(folder, spec.name, spec.fingerprint(), spec.resolved(), merged,
                        sources=[str(work_dir)])
    return folder


def record_sets(root: str | os.PathLike | None = None) -> list[RecordSet]:
    """Every record folder in every root (shipped first)."""
    found = []
    for base in roots(root):
        for records in sorted(base.glob(f"*/*/{database.RECORDS}")) if base.is_dir() else ():
            found.append(_record_set(records.parent))
    return found


def show(path: str | os.PathLike) -> dict:
    """A record folder's manifest plus its per-workload best times."""
    folder = Path(path)
    if not (folder / database.RECORDS).is_file():
        raise UsageError(f"{folder}: not a tuning record folder (no {database.RECORDS})")
    db = database.read(folder)
    return {**_manifest(folder), "best_us": {h: round(s * 1e6, 3)
                                             for h, s in sorted(db.best().items())}}


def prune_folder(path: str | os.PathLike) -> tuple[int, int]:
    """Keep only the best record per workload in a folder (a work dir too); (before, after)."""
    folder = Path(path)
    with _locked(folder):
        db = database.read(folder, repair=True)
        kept = database.pruned(db)
        database.write(folder, kept)
        if (folder / MANIFEST).is_file():
            manifest = _manifest(folder)
            _write_manifest(folder, manifest["target"], manifest["fingerprint"],
                            manifest["tvm_target"], kept, sources=manifest.get("sources", []))
    return len(db.records), len(kept.records)


def merge_folders(sources: list[str | os.PathLike], dest: str | os.PathLike) -> int:
    """Merge record folders (or work dirs) of one target into ``dest``; return its record count."""
    folders = [Path(s) for s in sources]
    manifests = [_manifest(f) for f in folders if (f / MANIFEST).is_file()]
    prints = {m["fingerprint"] for m in manifests}
    if len(prints) > 1:
        raise UsageError(f"cannot merge records of different targets or TVM versions "
                         f"(fingerprints {', '.join(sorted(prints))})")
    dest = Path(dest)
    with _locked(dest):
        merged = database.pruned(database.merged(*(database.read(f) for f in [*folders, dest])))
        database.write(dest, merged)
        if manifests:
            first = manifests[0]
            _write_manifest(dest, first["target"], first["fingerprint"], first["tvm_target"],
                            merged, sources=[str(f) for f in folders])
    return len(merged.records)


def _record_set(folder: Path) -> RecordSet:
    manifest = _manifest(folder) if (folder / MANIFEST).is_file() else {}
    workloads = len(database.read(folder).workloads)
    return RecordSet(folder, folder.parent.name, folder.name, workloads, manifest)


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise UsageError(f"{folder / MANIFEST}: missing or corrupt record manifest") from None


def _write_manifest(folder: Path, target: str, fingerprint: str, tvm_target: dict,
                    db: database.Database, *, sources: list[str]) -> None:
    manifest = {"version": MANIFEST_VERSION, "target": target, "fingerprint": fingerprint,
                "tvm_target": tvm_target, "versions": versions(),
                "workloads": len(db.workloads), "records": len(db.records),
                "sources": sources,
                "sha256": {name: sha256_file(folder / name)
                           for name in (database.WORKLOADS, database.RECORDS)}}
    atomic_write_bytes(folder / MANIFEST, canonical_json(manifest).encode())


@contextlib.contextmanager
def _locked(folder: Path):
    import filelock

    folder.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(folder / ".lock"), timeout=600):
        yield

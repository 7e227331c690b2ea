"""Tuning records for compiles: where they live, their digest, and the database a compile applies.

Records live in ``tuning_logs/<target>/<fingerprint>/`` (MetaSchedule's JSON database files,
pruned to the best record per workload, plus ``manifest.json``): first the folder shipped in the
wheel, then the user's (``$ACCEL_TUNING_LOGS`` or ``tuning_logs=``, default
``<user data dir>/accel/tuning_logs``), where ``accel tune`` saves what it found. The
fingerprint hashes the resolved TVM target and the TVM version, so stale records never apply.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import env
from ..data import data_dir
from . import database

MANIFEST = "manifest.json"


def user_root(explicit: str | os.PathLike | None = None) -> Path:
    """The user's record folder."""
    value = env.get(env.TUNING_LOGS, explicit)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_data_dir("accel")) / "tuning_logs"


def roots(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Record folders in the order compiles read them: shipped, then the user's."""
    return [data_dir("tuning_logs"), user_root(explicit)]


def _record_files(target_name: str, explicit):
    for order, root in enumerate(roots(explicit)):
        folder = root / target_name
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*.json") if p.is_file()):
                yield order, path.relative_to(root), path


def tuning_digest(spec, explicit: str | os.PathLike | None = None) -> str | None:
    """sha256 over the target's record files (root order, relative paths, contents); None when
    there are none.

    Part of every compile cache key (computed without TVM), so new or changed records are never
    silently ignored by a cached artifact; where accel is installed does not change it.
    """
    files = list(_record_files(spec.name, explicit))
    if not files:
        return None
    digest = hashlib.sha256()
    for order, relative, path in files:
        digest.update(f"{order}:{relative}".encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def record_dirs(spec, explicit: str | os.PathLike | None = None) -> list[Path]:
    """The folders whose records match this target exactly (its fingerprint), shipped first."""
    fingerprint = spec.fingerprint()
    dirs = [root / spec.name / fingerprint for root in roots(explicit)]
    return [d for d in dirs if (d / database.RECORDS).is_file()]


def compile_database(spec, explicit: str | os.PathLike | None = None):
    """A MetaSchedule database over every matching record folder, or None when there is none."""
    dirs = record_dirs(spec, explicit)
    if not dirs:
        return None
    from tvm.s_tir import meta_schedule as ms

    dbs = [ms.database.JSONDatabase(path_workload=str(d / database.WORKLOADS),
                                    path_tuning_record=str(d / database.RECORDS),
                                    allow_missing=False) for d in dirs]
    return dbs[0] if len(dbs) == 1 else ms.database.UnionDatabase(*dbs)

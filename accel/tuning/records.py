"""Tuning records on disk: the record files a compile for a target would apply, and their digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..data import data_dir


def record_files(target_name: str) -> list[Path]:
    """Every shipped record file for the target (``tuning_logs/<target>/<fingerprint>/``)."""
    folder = data_dir("tuning_logs") / target_name
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def tuning_digest(spec) -> str | None:
    """sha256 over the target's record files (names and contents); None when there are none.

    It is part of every compile cache key, so new or changed records are never silently
    ignored by a cached artifact.
    """
    files = record_files(spec.name)
    if not files:
        return None
    digest = hashlib.sha256()
    root = data_dir("tuning_logs")
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()

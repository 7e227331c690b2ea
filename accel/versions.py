"""Versions of accel and its substrate, recorded in manifests and cache keys."""

from __future__ import annotations

import functools
import hashlib
import platform
from importlib import metadata
from pathlib import Path

ACCEL_VERSION = "0.1.0"
#: Bumped when accel builds different artifacts from the same inputs, so cache keys change
#: (2: Adreno compiles with TVM's Adreno TIR pipeline; OpenCL artifacts carry a launch plan).
ARTIFACT_LAYOUT = "2"


@functools.cache
def versions() -> dict[str, str]:
    """accel, TVM and tvm-ffi versions (from package metadata: importing TVM is not needed)."""
    return {"accel": ACCEL_VERSION, "artifact_layout": ARTIFACT_LAYOUT,
            "accel_source": source_digest(), "tvm": _dist("apache-tvm"),
            "tvm_ffi": _dist("apache-tvm-ffi"), "python": platform.python_version()}


@functools.cache
def source_digest() -> str:
    """sha256 (16 hex digits) of accel's own code and schedule data, so a changed compiler
    (a development checkout, a patched install) never reuses artifacts the old one built."""
    from .data import data_dir

    h = hashlib.sha256()
    package = Path(__file__).resolve().parent
    files = sorted(package.rglob("*.py")) + sorted(data_dir("schedules").rglob("*.toml"))
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

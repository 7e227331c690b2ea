"""Versions of accel and its substrate, recorded in manifests and cache keys."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

ACCEL_VERSION = "0.1.0"


@functools.cache
def versions() -> dict[str, str]:
    """accel, TVM and tvm-ffi versions (from package metadata: importing TVM is not needed)."""
    return {"accel": ACCEL_VERSION, "tvm": _dist("apache-tvm"),
            "tvm_ffi": _dist("apache-tvm-ffi"), "python": platform.python_version()}


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

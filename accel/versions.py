"""Versions of accel and its substrate, recorded in manifests and cache keys."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

ACCEL_VERSION = "0.1.0"
#: Bumped when accel builds different artifacts from the same inputs, so cache keys change
#: (2: Adreno compiles with TVM's Adreno TIR pipeline; OpenCL artifacts carry a launch plan).
ARTIFACT_LAYOUT = "2"


@functools.cache
def versions() -> dict[str, str]:
    """accel, TVM and tvm-ffi versions (from package metadata: importing TVM is not needed)."""
    return {"accel": ACCEL_VERSION, "artifact_layout": ARTIFACT_LAYOUT, "tvm": _dist("apache-tvm"),
            "tvm_ffi": _dist("apache-tvm-ffi"), "python": platform.python_version()}


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

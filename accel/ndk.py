"""Object-archive targets (Android) linked into a ``.so`` by a toolchain the user names."""

from __future__ import annotations

import dataclasses
import shutil

from .errors import ToolchainError, UsageError
from .target import TargetSpec


def with_toolchain(spec: TargetSpec, compiler: str) -> TargetSpec:
    """``spec``, exporting a shared library linked by ``compiler`` instead of an object archive.

    Parameters
    ----------
    spec : TargetSpec
        A CPU or GPU target, e.g. ``android-arm64`` or ``adreno-740``.
    compiler : str
        A C++ compiler driver for the target, as a path or a command on PATH, e.g. the NDK's
        ``.../toolchains/llvm/prebuilt/linux-x86_64/bin/aarch64-linux-android33-clang++``.

    Returns
    -------
    TargetSpec
    """
    if spec.is_micro:
        raise UsageError(f"target '{spec.name}' exports a C package; --toolchain does not apply",
                         hint="micro targets use the [export] toolchain of their TOML")
    path = shutil.which(compiler)
    if path is None:
        raise ToolchainError(f"toolchain '{compiler}' for target '{spec.name}' is not an "
                             "executable path or a command on PATH",
                             hint="give the NDK's aarch64-linux-android<API>-clang++")
    return dataclasses.replace(spec, export_format="shared-library", toolchain=path,
                               debian_package=None)

"""An AArch64 Python sysroot with a runtime-only TVM, from Debian arm64 packages and PyPI wheels.

Everything comes from the package registries through their own clients (``apt-get download``,
``pip download``) into a cache folder, once; ``qemu-aarch64-static -L SYSROOT`` then runs it.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from ..errors import AccelError

#: Debian bookworm arm64 packages: the interpreter and the C libraries its modules need.
DEBS = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6",
        "libstdc++6", "libgcc-s1", "zlib1g", "libffi8", "libssl3", "libexpat1", "libbz2-1.0",
        "liblzma5", "libuuid1", "libtinfo6", "libncursesw6", "libreadline8", "libcrypt1")
#: aarch64 wheels: the same TVM pins as the host (see pyproject.toml), numpy for tensors.
WHEELS = ("apache-tvm==0.27.0.post1", "apache-tvm-ffi==0.1.14.post1", "numpy>=1.26,<3",
          "typing_extensions>=4.10", "cloudpickle>=3.0")
QEMU = "qemu-aarch64-static"
_MARK = ".accel-complete"
_TIMEOUT_S = 600


class EmulationError(AccelError):
    """An emulated device cannot be set up: a missing tool, or an unreachable registry."""

    exit_code = 15


class EmulatorUnavailable(EmulationError):
    """A tool or package registry the emulator needs is missing here (tests skip on it)."""


def ensure_sysroot(cache: Path) -> Path:
    """The sysroot folder under ``cache`` (downloaded and unpacked on first use)."""
    root = Path(cache) / "aarch64-sysroot"
    if (root / _MARK).is_file():
        return root
    require(QEMU, "qemu-user-static")
    debs, wheels = _download_debs(Path(cache) / "debs"), _download_wheels(Path(cache) / "wheels")
    shutil.rmtree(root, ignore_errors=True)
    site = root / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(root)], "unpack")
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
    (root / _MARK).write_text("ok\n")
    return root


def python_command(sysroot: Path) -> list[str]:
    """The command line that starts the emulated AArch64 Python."""
    return [require(QEMU, "qemu-user-static"), "-L", str(sysroot),
            str(sysroot / "usr/bin/python3.11")]


def require(tool: str, package: str) -> str:
    """The path of a command-line tool, or EmulationError naming its Debian package."""
    path = shutil.which(tool)
    if path is None:
        raise EmulatorUnavailable(f"'{tool}' is not installed (Debian package {package})")
    return path


def _download_debs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if "arm64" not in _run(["dpkg", "--print-foreign-architectures"], "dpkg").split():
        raise EmulatorUnavailable("apt has no arm64 architecture to download from",
                             hint="dpkg --add-architecture arm64 && apt-get update (.ci/run)")
    _run(["apt-get", "download", "-q", *[f"{d}:arm64" for d in DEBS]], "apt-get download",
         cwd=folder, registry=True)
    return sorted(folder.glob("*_arm64.deb"))


def _download_wheels(folder: Path) -> list[Path]:
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
          "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
          "--implementation", "cp", "-d", str(folder), *WHEELS], "pip download",
         registry=True)
    return sorted(folder.glob("*.whl"))


def _run(cmd: list[str], what: str, cwd: Path | None = None, registry: bool = False) -> str:
    """Run a tool; a failed download (``registry``) means the registry is unreachable here."""
    error = EmulatorUnavailable if registry else EmulationError
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise error(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise error(f"{what} failed (exit {done.returncode}): {tail[0][:300]}",
                             hint=" ".join(cmd)[:300])
    return done.stdout

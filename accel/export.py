"""Export step per target: link the compiled module with the target's toolchain and check it."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import ToolchainError

# ELF e_machine values for the architectures accel targets.
ELF_MACHINES = {"x86_64": 62, "aarch64": 183, "armv7l": 40}


def export_library(executable, spec) -> tuple[str, bytes]:
    """Export a built executable in the target's format; return (member name, bytes)."""
    name = {"shared-library": "model.so", "object-archive": "model.tar"}[spec.export_format]
    with tempfile.TemporaryDirectory(prefix="accel-export-") as tmp:
        out = Path(tmp) / name
        kwargs = {"fcompile": _compiler(spec)} if spec.export_format == "shared-library" else {}
        try:
            executable.export_library(str(out), **kwargs)
        except Exception as exc:
            raise ToolchainError(f"target '{spec.name}': export with "
                                 f"{spec.toolchain or 'the host compiler'} failed: "
                                 f"{_last_line(exc)}") from exc
        data = out.read_bytes()
    check_library(data, name, spec)
    return f"lib/{name}", data


def _compiler(spec):
    from tvm.support import cc

    if not spec.toolchain:
        return cc.create_shared
    if shutil.which(spec.toolchain) is None:
        package = f" (Debian package {spec.debian_package})" if spec.debian_package else ""
        raise ToolchainError(f"target '{spec.name}' needs the cross compiler "
                             f"'{spec.toolchain}'{package}, which is not on PATH")
    return cc.cross_compiler(spec.toolchain)


def _last_line(exc: Exception) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def elf_machine(data: bytes) -> int | None:
    """The ELF e_machine of a binary blob, or None if it is not ELF."""
    if data[:4] != b"\x7fELF":
        return None
    little = data[5] == 1
    return int.from_bytes(data[18:20], "little" if little else "big")


def check_library(data: bytes, name: str, spec) -> None:
    """Check that the exported library is real code for the target's architecture."""
    blobs = _tar_objects(data) if name.endswith(".tar") else {name: data}
    want = ELF_MACHINES.get(spec.arch)
    for member, blob in blobs.items():
        got = elf_machine(blob)
        if want is not None and got != want:
            from .errors import InternalError

            raise InternalError(f"{member}: expected an ELF for {spec.arch} (e_machine {want}), "
                                f"got e_machine {got}")


def _tar_objects(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()
                if m.isfile() and m.name.endswith(".o")}


def device_sources(executable) -> dict[str, str]:
    """Device code embedded in the executable (OpenCL C, CUDA), by file name, for inspection."""
    lib = executable.mod if hasattr(executable, "mod") else None
    found: dict[str, str] = {}
    for module in _walk(lib):
        kind = getattr(module, "kind", None) or getattr(module, "type_key", "")
        if kind == "opencl":
            found["device/kernels.cl"] = module.inspect_source()
        elif kind == "cuda":
            found["device/kernels.cu"] = module.inspect_source("cu")
    return found


def _walk(module):
    if module is None:
        return
    yield module
    for sub in getattr(module, "imports", []):
        yield from _walk(sub)

"""The package's C toolchain: finding it, compiling per-part objects, and their size report."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ..errors import ToolchainError

#: Flags every package build adds to the target's own (Makefile and size report alike).
COMMON_CFLAGS = ("-O2", "-ffunction-sections", "-fdata-sections", "-fno-strict-aliasing")
#: The package's C files, by the part of the size report they count towards.
PARTS = {"model.c": "runtime", "accel_runtime.c": "runtime", "kernels.c": "kernels",
         "weights.c": "weights"}


def require_compiler(spec) -> str:
    """The target's C compiler on PATH, or a ToolchainError naming its Debian package."""
    tool = spec.toolchain or "cc"
    path = shutil.which(tool)
    if path is None:
        package = f" (Debian package {spec.debian_package})" if spec.debian_package else ""
        raise ToolchainError(f"target '{spec.name}' needs the C compiler '{tool}'{package}, "
                             "which is not on PATH")
    return path


def sibling_tool(compiler: str, tool: str) -> str:
    """``arm-none-eabi-gcc`` -> ``arm-none-eabi-size``; plain ``gcc`` -> ``size``."""
    name = Path(compiler).name
    prefix = name[: -len("gcc")] if name.endswith("gcc") else ""
    return prefix + tool


def compile_objects(folder: Path, compiler: str, *, cflags: tuple[str, ...]) -> dict[str, Path]:
    """Compile each package C file to an object in ``folder/.obj`` (stack usage alongside)."""
    out = folder / ".obj"
    out.mkdir(exist_ok=True)
    objects = {}
    for name in PARTS:
        obj = out / name.replace(".c", ".o")
        cmd = [compiler, *cflags, *COMMON_CFLAGS, "-fstack-usage", "-I", str(folder), "-c",
               str(folder / name), "-o", str(obj)]
        _run(cmd)
        objects[name] = obj
    return objects


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ToolchainError(f"'{' '.join(cmd[:1])}' failed on {cmd[-3] if len(cmd) > 3 else ''}"
                             f": {err[:300]}", hint=" ".join(cmd))
    return proc.stdout


def size_report(objects: dict[str, Path], compiler: str, *, arena: int) -> dict:
    """Flash (text + rodata + data) and RAM (data + bss, arena apart) per part, in bytes."""
    size_tool = shutil.which(sibling_tool(compiler, "size")) or "size"
    parts = {p: {"flash": 0, "ram": 0} for p in ("kernels", "weights", "runtime")}
    for name, obj in objects.items():
        text, data, bss = _berkeley(_run([size_tool, str(obj)]))
        part = parts[PARTS[name]]
        part["flash"] += text + data
        part["ram"] += data + bss
    parts["runtime"]["ram"] -= arena  # the arena is model.c's bss; reported on its own
    flash = sum(p["flash"] for p in parts.values())
    ram = sum(p["ram"] for p in parts.values()) + arena
    return {"flash": flash, "ram": ram, "arena": arena, "parts": parts,
            "stack": stack_usage(objects), "tool": Path(size_tool).name}


def _berkeley(text: str) -> tuple[int, int, int]:
    row = text.strip().splitlines()[-1].split()
    return int(row[0]), int(row[1]), int(row[2])


def stack_usage(objects: dict[str, Path]) -> dict:
    """The largest kernel frame and the call helper's frame, from gcc's -fstack-usage files."""
    frames: dict[str, int] = {}
    for obj in objects.values():
        su = obj.with_suffix(".su")
        for line in su.read_text().splitlines() if su.exists() else ():
            match = re.match(r".*:(\w+)\t(\d+)\t", line)
            if match:
                frames[match.group(1)] = int(match.group(2))
    kernels = [v for k, v in frames.items() if k.startswith("__tvm_ffi_")]
    return {"max_kernel": max(kernels, default=0), "accel_call": frames.get("accel_call", 0),
            "accel_model_run": frames.get("accel_model_run", 0)}

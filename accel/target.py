"""Named targets: reads targets/*.toml, validates them, resolves TVM targets and fingerprints."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import tomllib
from pathlib import Path
from typing import Any

from . import env
from .data import data_dir
from .errors import TargetError, did_you_mean
from .fsutil import sha256_json

FAMILIES = ("x86-cpu", "arm-cpu", "cuda", "mali", "adreno", "micro")
FORMATS = ("shared-library", "object-archive", "c-package")
DEVICES = ("cpu", "cuda", "opencl")
_TOP_KEYS = {"description", "family", "schedule", "detect_host", "tvm", "export", "runtime",
             "tune", "fallback"}
_EXPORT_KEYS = {"format", "toolchain", "debian_package", "cflags"}
_RUNTIME_KEYS = {"arch", "device", "cpu_features"}
_TUNE_KEYS = {"runner", "rpc_key", "max_trials_per_task"}
# CPU flags (as /proc/cpuinfo names them) that LLVM may emit code for; a host build needs them all.
_SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq",
               "avx512vl", "avx512cd", "avx512_vnni", "avx512_bf16", "avx_vnni", "asimd",
               "asimddp", "sve")


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """One named target, as declared in its TOML file (host detection already applied)."""

    name: str
    description: str
    family: str
    schedule: str
    tvm: dict[str, Any]
    export_format: str
    toolchain: str | None
    debian_package: str | None
    arch: str
    device: str
    cpu_features: tuple[str, ...]
    tune: dict[str, Any]
    source: str
    #: TVM target overrides to retry with when TVM fails on the main one.
    fallback_tvm: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The host target: LLVM names this CPU (``mcpu``) when the TVM target is resolved.
    detect_host: bool = False
    #: C compiler flags for C-package targets (written into the package's Makefile).
    cflags: tuple[str, ...] = ()

    def tvm_target(self):
        """Return the resolved ``tvm.target.Target`` (imports TVM)."""
        from tvm.target import Target, codegen

        config = {k: v for k, v in self.tvm.items() if k != "host"}
        if self.detect_host:
            config.setdefault("mcpu", codegen.llvm_get_system_cpu())
        try:
            host = self.tvm.get("host")
            return Target(config, host=host) if host else Target(config)
        except Exception as exc:  # TVM raises plain errors for bad configs
            raise TargetError(f"target '{self.name}' ({self.source}): invalid [tvm] table: "
                              f"{str(exc).splitlines()[0]}") from None

    def resolved(self) -> dict[str, Any]:
        """The resolved TVM target as a JSON dict (tag expanded, defaults filled in)."""
        return json.loads(str(self.tvm_target()))

    def fingerprint(self) -> str:
        """A short hash of the resolved TVM target and the TVM version."""
        import tvm

        return sha256_json({"target": self.resolved(), "tvm": tvm.__version__})[:16]

    def identity(self) -> dict[str, Any]:
        """Everything that decides what TVM builds for this target, read without TVM.

        Cache keys use it: with the TVM version it determines :meth:`resolved`, and for the
        host target it includes this CPU's identity (model and flags) in place of LLVM's name.
        """
        fields = dataclasses.asdict(self)
        del fields["source"], fields["description"]
        if self.detect_host:
            fields["host_cpu"] = host_cpu_identity()
        return fields

    @property
    def is_micro(self) -> bool:
        """True for microcontroller targets, which export a C package."""
        return self.family == "micro"


def target_dirs(targets_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for target files: the user folder (if any) first, then the shipped one."""
    user = env.get(env.TARGETS_DIR, targets_dir)
    return ([Path(user)] if user else []) + [data_dir("targets")]


@functools.cache
def _catalog(dirs: tuple[Path, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in reversed(dirs):  # earlier folders win
        for path in sorted(folder.glob("*.toml")):
            found[path.stem] = path
    return found


def list_targets(targets_dir: str | os.PathLike | None = None) -> list[TargetSpec]:
    """Every named target, sorted by name."""
    catalog = _catalog(tuple(target_dirs(targets_dir)))
    return [get_target(name, targets_dir=targets_dir) for name in sorted(catalog)]


def get_target(name: str | TargetSpec | None = None, *,
               targets_dir: str | os.PathLike | None = None) -> TargetSpec:
    """Return the named target; ``None`` means ``host``. Unknown names get a did-you-mean."""
    if isinstance(name, TargetSpec):
        return name
    name = name or "host"
    catalog = _catalog(tuple(target_dirs(targets_dir)))
    if name not in catalog:
        raise TargetError(f"unknown target '{name}'", hint=did_you_mean(name, catalog))
    return _load(catalog[name])


@functools.cache
def _load(path: Path) -> TargetSpec:
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from None
    _check_keys(path, raw)
    if raw.get("detect_host"):
        raw = _detect_host(raw)
    return _spec(path, raw)


def _check_keys(path: Path, raw: dict) -> None:
    for table, allowed in (("", _TOP_KEYS), ("export", _EXPORT_KEYS),
                           ("runtime", _RUNTIME_KEYS), ("tune", _TUNE_KEYS)):
        keys = set(raw.get(table, {}) if table else raw)
        unknown = keys - allowed
        if unknown:
            where = f"[{table}] " if table else ""
            raise TargetError(f"{path}: unknown {where}key(s) {sorted(unknown)}",
                              hint=f"valid: {', '.join(sorted(allowed))}")
    for key in ("family", "tvm", "runtime"):
        if key not in raw:
            raise TargetError(f"{path}: missing required key '{key}'")


def _choice(path: Path, key: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise TargetError(f"{path}: {key} = '{value}' is not valid",
                          hint=did_you_mean(value, valid))
    return value


def _spec(path: Path, raw: dict) -> TargetSpec:
    export, runtime = raw.get("export", {}), raw["runtime"]
    family = _choice(path, "family", raw["family"], FAMILIES)
    return TargetSpec(
        name=path.stem,
        description=raw.get("description", ""),
        family=family,
        schedule=raw.get("schedule", family),
        tvm=raw["tvm"],
        export_format=_choice(path, "export.format", export.get("format", "shared-library"),
                              FORMATS),
        toolchain=export.get("toolchain"),
        debian_package=export.get("debian_package"),
        arch=runtime.get("arch", ""),
        device=_choice(path, "runtime.device", runtime.get("device", "cpu"), DEVICES),
        cpu_features=tuple(runtime.get("cpu_features", ())),
        tune=dict(raw.get("tune", {})),
        source=str(path),
        fallback_tvm=dict(raw.get("fallback", {}).get("tvm", {})),
        detect_host=bool(raw.get("detect_host")),
        cflags=tuple(export.get("cflags", ())),
    )


def _detect_host(raw: dict) -> dict:
    """Fill in this machine's core count, architecture and SIMD flags (the CPU name is LLVM's,
    filled in when the TVM target is resolved)."""
    raw = dict(raw)
    tvm_cfg = dict(raw["tvm"])
    tvm_cfg.setdefault("num-cores", os.cpu_count() or 1)
    raw["tvm"] = tvm_cfg
    raw["family"] = "arm-cpu" if platform.machine() in ("aarch64", "arm64") else "x86-cpu"
    raw["runtime"] = {"arch": platform.machine(), "device": "cpu",
                      "cpu_features": [f for f in _SIMD_FLAGS if f in host_cpu_flags()]}
    return raw


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where unavailable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def host_cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine, from /proc/cpuinfo (empty where unavailable)."""
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def host_cpu_identity() -> dict[str, str]:
    """What identifies this CPU to a compiler: architecture, vendor, model and feature flags."""
    info = _cpuinfo()
    keys = ("vendor_id", "cpu family", "model", "model name", "CPU implementer", "CPU part",
            "CPU variant")
    return {"machine": platform.machine(), **{k: info[k] for k in keys if k in info},
            "flags": " ".join(sorted(host_cpu_flags()))}

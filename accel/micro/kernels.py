"""Kernel C source from TVM's C codegen, made standalone, with each kernel's workspace need."""

from __future__ import annotations

import dataclasses
import re

from ..errors import CompileError
from .plan import align

#: The only TVM symbols the shim (accel_runtime.c) provides.
SHIM_SYMBOLS = {"TVMBackendAllocWorkspace", "TVMBackendFreeWorkspace",
                "TVMFFIErrorSetRaisedFromCStrParts"}
_INCLUDE = re.compile(r'^#include "tvm/[^"]+"\n', re.M)
_FUNC = re.compile(r"^TVM_DLL int32_t __tvm_ffi_(\w+)\(void\* self_handle, void\* args, "
                   r"int32_t num_args, void\* result\) \{", re.M)
_ALLOC = re.compile(r"TVMBackendAllocWorkspace\(([^;]*?)\)\)")
_ALLOC_SIZE = re.compile(r"^\s*\d+,\s*\w+,\s*\(uint64_t\)(\d+)(?:ULL)?,")
_TVM_CALL = re.compile(r"\b(TVM\w+)\s*\(")
_DOUBLE = re.compile(r"\bdouble\b")
_PACKED = re.compile(r'TVMFFIEnvModLookupFromImports\([^,]*, "([^"]+)"')


@dataclasses.dataclass(frozen=True)
class KernelSource:
    """kernels.c text, and the workspace bytes each kernel allocates at its peak (aligned)."""

    text: str
    workspaces: dict[str, int]
    #: Kernels computing in double (soft-float on Cortex-M4/M7's single-precision FPUs).
    float64: tuple[str, ...] = ()


def build_kernels(kernels, target, *, target_name: str) -> KernelSource:
    """Compile the PrimFuncs with TVM's C codegen (asserts off) into standalone C."""
    import tvm

    try:
        with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_assert": True}):
            lib = tvm.tirx.build(kernels, target=target)
    except Exception as exc:
        last = [ln for ln in str(exc).splitlines() if ln.strip()][-1:] or [type(exc).__name__]
        raise CompileError(f"target '{target_name}': TVM's C codegen failed: {last[0][:300]}") \
            from exc
    source = lib.inspect_source()
    _check_symbols(source, target_name)
    text = _INCLUDE.sub("", source).replace("#define TVM_EXPORTS\n",
                                            '#define TVM_EXPORTS\n#include "accel_rt.h"\n', 1)
    doubles = tuple(k for k, body in _bodies(source) if _DOUBLE.search(body))
    return KernelSource(text, workspaces(source), doubles)


def _check_symbols(source: str, target_name: str) -> None:
    """Kernels calling into the TVM runtime (packed functions: sort, top-k, ...) cannot run."""
    for kernel, body in _bodies(source):
        unknown = {m.group(1) for m in _TVM_CALL.finditer(body)} - SHIM_SYMBOLS - {"TVM_DLL"}
        if unknown:
            packed = sorted(set(_PACKED.findall(body))) or sorted(unknown)
            raise CompileError(f"target '{target_name}': kernel '{kernel}' calls the TVM "
                               f"runtime function(s) {', '.join(packed)}, which the C package "
                               "cannot provide (no TVM on the device)")


def _bodies(source: str):
    """(kernel name, C body) for each generated packed function."""
    starts = list(_FUNC.finditer(source))
    for i, match in enumerate(starts):
        yield match.group(1), source[match.end(): starts[i + 1].start()
                                     if i + 1 < len(starts) else None]


def workspaces(source: str) -> dict[str, int]:
    """Per kernel, the sum of its workspace allocations (all constant sizes in static models).

    The kernels free their workspaces before returning (LIFO), so the sum is the kernel's peak.
    """
    found: dict[str, int] = {}
    for kernel, body in _bodies(source):
        total = 0
        for alloc in _ALLOC.finditer(body):
            size = _ALLOC_SIZE.match(alloc.group(1))
            if size is None:
                raise CompileError(f"kernel {kernel} allocates a workspace of dynamic "
                                   f"size ({alloc.group(1)}); the C package needs static sizes")
            total += align(int(size.group(1)))
        found[kernel] = total
    return found

"""TVM's runtime without the `tvm` package: tvm_ffi plus libtvm_runtime.so, for production loads.

`import tvm` pulls in the compiler, Relax, TIR and (through tvm_ffi) torch: seconds of import
and hundreds of MB. Running a compiled Relax VM needs only ``libtvm_runtime.so`` and the ffi.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

_lock = threading.Lock()
_loaded: dict[str, object] = {}
# DLPack device type codes (dlpack.h) for the devices accel artifacts use.
DEVICE_TYPES = {"cpu": 1, "cuda": 2, "opencl": 4}
_POOLED_ALLOCATOR = 2
_SIDECARS = {"cuda": "tvm_runtime_cuda", "opencl": "tvm_runtime_opencl"}


def ffi():
    """The tvm_ffi module, imported without importing torch (tvm_ffi tries it eagerly)."""
    if "tvm_ffi" in sys.modules:
        return sys.modules["tvm_ffi"]
    with _lock:
        blocked = "torch" not in sys.modules
        if blocked:
            sys.modules["torch"] = None  # makes `import torch` raise ImportError, which it catches
        try:
            import tvm_ffi
        finally:
            if blocked and sys.modules.get("torch", 0) is None:
                del sys.modules["torch"]
    return tvm_ffi


def _lib_dir() -> Path:
    if "tvm" in sys.modules:  # the full package is loaded already: use its libraries
        return Path(sys.modules["tvm"].__file__).parent / "lib"
    spec = importlib.util.find_spec("tvm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the apache-tvm package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def ensure_runtime(device: str = "cpu") -> None:
    """Load libtvm_runtime.so (and the device's runtime library) once per process."""
    ffi()
    from tvm_ffi.libinfo import load_lib_ctypes

    names = ["tvm_runtime"] + ([_SIDECARS[device]] if device in _SIDECARS else [])
    with _lock:
        for name in names:
            if name not in _loaded:
                mode = "RTLD_GLOBAL" if name == "tvm_runtime" else "RTLD_LOCAL"
                try:
                    _loaded[name] = load_lib_ctypes("tvm", name, mode,
                                                    extra_lib_paths=[_lib_dir()])
                except (OSError, RuntimeError):
                    if name == "tvm_runtime":
                        raise
                    _loaded[name] = None  # no such device runtime: device_exists says False


def device(kind: str, index: int = 0):
    """A tvm_ffi Device of a kind accel knows ("cpu", "cuda", "opencl")."""
    ensure_runtime(kind)
    return ffi().device(kind, index)


def device_exists(kind: str, index: int = 0) -> bool:
    """Whether this machine has that device (TVM's runtime.GetDeviceAttr, kExist)."""
    if kind == "cpu":
        return True
    ensure_runtime(kind)
    get_attr = ffi().get_global_func("runtime.GetDeviceAttr", allow_missing=True)
    try:
        return bool(get_attr and get_attr(DEVICE_TYPES[kind], index, 0))
    except Exception:  # a device runtime that cannot reach its driver
        return False


def load_module(path: str, device_kind: str = "cpu"):
    """Load an exported library (``export_library`` output) as an ffi Module."""
    ensure_runtime(device_kind)
    return ffi().load_module(path)


def new_vm(library, kind: str, index: int = 0):
    """A fresh Relax VM over a loaded library, set up for the device (and the CPU host)."""
    vm = library["vm_load_executable"]()
    args = [DEVICE_TYPES[kind], index, _POOLED_ALLOCATOR]
    if kind != "cpu":  # shape functions and host code always run on the CPU
        args += [DEVICE_TYPES["cpu"], 0, _POOLED_ALLOCATOR]
    vm["vm_initialization"](*args)
    return vm


def from_dlpack(value):
    """An ffi Tensor sharing memory with a DLPack-capable array (numpy, torch, ...)."""
    return ffi().from_dlpack(value)


def is_tensor(value) -> bool:
    """Whether ``value`` is an ffi Tensor."""
    return isinstance(value, ffi().Tensor)


def copy_to(tensor, target_device):
    """A copy of an ffi Tensor on another device (host <-> GPU)."""
    tvm_ffi = ffi()
    alloc = tvm_ffi.get_global_func("runtime.TVMTensorAllocWithScope")
    copy = tvm_ffi.get_global_func("runtime.TVMTensorCopyFromTo")
    result = alloc(tvm_ffi.Shape(list(tensor.shape)), tensor.dtype, target_device, None)
    copy(tensor, result)
    return result

"""Production loading: accel.load verifies an artifact and returns a thread-safe callable module.

It imports no frontend, tuner, compiler or torch: only tvm_ffi and libtvm_runtime.so
(see accel/tvm_runtime.py).
"""

from __future__ import annotations

import os
import platform
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from . import env, tvm_runtime
from .artifact import Artifact, open_artifact
from .errors import ArtifactError, InputError
from .signature import NamedIO, TensorSpec

#: Inputs whose data starts on this boundary are passed without a copy (TVM allocates so).
ALIGNMENT = 64


def load(path: str | os.PathLike, *, device_id: int = 0,
         signing_key: bytes | str | None = None) -> CompiledModule:
    """Load a compiled artifact for inference.

    The library's sha256 is checked against the manifest before any of its code is loaded, and
    the artifact must fit this machine (architecture, CPU features, device). With a signing key
    (argument or $ACCEL_SIGNING_KEY), an artifact whose manifest signature does not match is
    refused.

    Parameters
    ----------
    path : path
        An ``.accel`` file written by ``accel.compile``.
    device_id : int
        Which device of the artifact's kind (GPU index) to run on.
    signing_key : bytes or str, optional
        HMAC key the artifact must be signed with.

    Returns
    -------
    CompiledModule
    """
    key = signing_key if signing_key is not None else env.get(env.SIGNING_KEY)
    artifact = open_artifact(path, signing_key=key.encode() if isinstance(key, str) else key)
    check_fits_host(artifact)
    kind = artifact.manifest["runtime"]["device"]
    return CompiledModule(artifact, _load_library(artifact, artifact.library_bytes(), kind),
                          device_id)


def check_fits_host(artifact: Artifact) -> None:
    """Refuse an artifact built for another architecture, CPU or library format."""
    runtime = artifact.manifest["runtime"]
    where = f"{artifact.path}: built for target '{artifact.target_name}'"
    if artifact.manifest["library"]["format"] != "shared-library":
        raise ArtifactError(f"{where} as an object archive, to be linked on the device; "
                            "it cannot be loaded here")
    machine = platform.machine()
    if runtime["arch"] != machine:
        raise ArtifactError(f"{where} ({runtime['arch']}); this machine is {machine}")
    from .target import host_cpu_flags

    missing = sorted(set(runtime.get("cpu_features", ())) - host_cpu_flags())
    if missing and host_cpu_flags():
        raise ArtifactError(f"{where}, which needs CPU features this CPU lacks: "
                            f"{', '.join(missing)}")


def _load_library(artifact: Artifact, data: bytes, kind: str):
    name = Path(artifact.manifest["library"]["path"]).name
    with tempfile.TemporaryDirectory(prefix="accel-load-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        os.chmod(path, 0o500)
        try:
            return tvm_runtime.load_module(str(path), kind)
        except Exception as exc:
            raise ArtifactError(f"{artifact.path}: the library does not load on this machine: "
                                f"{str(exc).strip().splitlines()[-1][:300]}") from exc


class CompiledModule(NamedIO):
    """A loaded model: call it with arrays (by position or name), get numpy arrays back.

    Inputs may be numpy arrays or any DLPack tensor on the CPU (a torch tensor, say); a
    contiguous, 64-byte aligned input is passed to the kernels without a copy. Outputs are numpy
    arrays over the result memory (no copy), or are written into caller-provided arrays
    (``out=``). Safe to call from several threads: each thread gets its own virtual machine
    over the one loaded library.
    """

    def __init__(self, artifact: Artifact, library, device_id: int = 0):
        self.artifact = artifact
        self.inputs: tuple[TensorSpec, ...] = artifact.inputs
        self.outputs: tuple[TensorSpec, ...] = artifact.outputs
        self._library = library
        self._kind = artifact.manifest["runtime"]["device"]
        self._device_id = device_id
        self._device = _device(artifact, device_id)
        self._local = threading.local()

    def __call__(self, *args, out: Sequence[np.ndarray] | None = None,
                 **kwargs) -> list[np.ndarray]:
        """Run the model; inputs by position or by name; returns the outputs in order.

        With ``out`` (one array per output, of its shape and dtype), the results are copied
        into those arrays, which are returned.
        """
        tensors = bind_inputs(self.inputs, args, kwargs)
        if out is not None:
            _check_out(self.outputs, out)
        results = self.run(tensors)
        if out is None:
            return results
        for target, result in zip(out, results, strict=True):
            np.copyto(target, result)
        return list(out)

    def run(self, tensors: list) -> list[np.ndarray]:
        """Run on already-checked inputs (ffi Tensors, in signature order)."""
        if self._kind != "cpu":
            tensors = [tvm_runtime.copy_to(t, self._device) for t in tensors]
        result = self._vm()["main"](*tensors)
        results = [result] if tvm_runtime.is_tensor(result) else list(result)
        if self._kind != "cpu":
            cpu = tvm_runtime.device("cpu")
            results = [tvm_runtime.copy_to(r, cpu) for r in results]
        return [np.from_dlpack(r) for r in results]

    def _vm(self):
        vm = getattr(self._local, "vm", None)
        if vm is None:
            vm = tvm_runtime.new_vm(self._library, self._kind, self._device_id)
            self._local.vm = vm
        return vm

    def __repr__(self) -> str:
        ins = ", ".join(t.describe() for t in self.inputs)
        return f"<CompiledModule {self.artifact.target_name} ({ins})>"


def _device(artifact: Artifact, device_id: int):
    kind = artifact.manifest["runtime"]["device"]
    if kind not in tvm_runtime.DEVICE_TYPES:
        raise ArtifactError(f"{artifact.path}: unknown device kind '{kind}'")
    if not tvm_runtime.device_exists(kind, device_id):
        raise ArtifactError(f"{artifact.path}: built for a {kind} device "
                            f"(target '{artifact.target_name}'), and this machine has no "
                            f"{kind} device {device_id}")
    return tvm_runtime.device(kind, device_id)


def bind_inputs(specs: tuple[TensorSpec, ...], args: tuple, kwargs: Mapping) -> list:
    """Match positional and named inputs to the signature; check names, shapes and dtypes."""
    names = [s.name for s in specs]
    if len(args) > len(specs):
        raise InputError(f"got {len(args)} positional inputs, the model takes {len(specs)}: "
                         f"{', '.join(names)}")
    given = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name not in names:
            from .errors import did_you_mean

            raise InputError(f"unknown input '{name}'", hint=did_you_mean(name, names))
        if name in given:
            raise InputError(f"input '{name}' given both by position and by name")
        given[name] = value
    missing = [n for n in names if n not in given]
    if missing:
        raise InputError(f"missing input(s) {', '.join(missing)}; the model takes "
                         + "; ".join(s.describe() for s in specs))
    return [_to_tensor(spec, given[spec.name]) for spec in specs]


def _to_tensor(spec: TensorSpec, value):
    """An ffi Tensor for one input: shared with ``value`` when its layout allows, else a copy."""
    if not isinstance(value, np.ndarray) and hasattr(value, "__dlpack__"):
        shared = _shared_dlpack(spec, value)
        if shared is not None:
            return shared
        value = np.from_dlpack(value)
    array = np.asarray(value)
    _check_signature(spec, str(array.dtype), tuple(array.shape))
    # DLPack cannot export a read-only array: those are copied too
    if (not array.flags.c_contiguous or not array.flags.writeable
            or array.ctypes.data % ALIGNMENT):
        array = _aligned_copy(array)
    return tvm_runtime.from_dlpack(array)


def _shared_dlpack(spec: TensorSpec, value):
    try:
        tensor = tvm_runtime.from_dlpack(value)
    except Exception as exc:
        raise InputError(f"input '{spec.name}': cannot read a {type(value).__name__} through "
                         f"DLPack ({str(exc).strip().splitlines()[-1][:200]})") from None
    if tensor.device.dlpack_device_type() != tvm_runtime.DEVICE_TYPES["cpu"]:
        raise InputError(f"input '{spec.name}' is on {tensor.device}; pass a CPU tensor")
    _check_signature(spec, str(tensor.dtype), tuple(tensor.shape))
    aligned = tensor.data_ptr() % ALIGNMENT == 0
    return tensor if tensor.is_contiguous() and aligned else None


def _check_signature(spec: TensorSpec, dtype: str, shape: tuple) -> None:
    if dtype != spec.dtype:
        raise InputError(f"input '{spec.name}' has dtype {dtype}, expected {spec.dtype}",
                         hint=f"cast it, e.g. x.astype('{spec.dtype}')")
    if shape != spec.shape:
        raise InputError(f"input '{spec.name}' has shape {list(shape)}, expected "
                         f"{list(spec.shape)}")


def _aligned_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy whose data starts on an ALIGNMENT-byte boundary."""
    raw = np.empty(array.nbytes + ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % ALIGNMENT
    copy = raw[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
    np.copyto(copy, array)
    return copy


def _check_out(specs: tuple[TensorSpec, ...], out: Sequence[np.ndarray]) -> None:
    if len(out) != len(specs):
        raise InputError(f"out= has {len(out)} arrays, the model has {len(specs)} outputs: "
                         + "; ".join(s.describe() for s in specs))
    for spec, array in zip(specs, out, strict=True):
        if not isinstance(array, np.ndarray) or not array.flags.writeable:
            raise InputError(f"out= for output '{spec.name}' must be a writeable numpy array")
        if str(array.dtype) != spec.dtype or tuple(array.shape) != spec.shape:
            raise InputError(f"out= for output '{spec.name}' is {array.dtype} "
                             f"{list(array.shape)}, expected {spec.describe()}")

"""Production loading: accel.load verifies an artifact and returns a thread-safe callable module.

This module imports no frontend, no tuner and no compiler pass: only TVM's runtime.
"""

from __future__ import annotations

import os
import platform
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import env
from .artifact import Artifact, open_artifact
from .errors import ArtifactError, InputError
from .signature import TensorSpec

_DEVICE_KINDS = {"cpu": "cpu", "cuda": "cuda", "opencl": "opencl"}


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
    library = artifact.library_bytes()
    return CompiledModule(artifact, _load_library(artifact, library), device_id)


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


def _load_library(artifact: Artifact, data: bytes):
    import tvm.runtime

    name = Path(artifact.manifest["library"]["path"]).name
    with tempfile.TemporaryDirectory(prefix="accel-load-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        os.chmod(path, 0o500)
        try:
            return tvm.runtime.load_module(str(path))
        except Exception as exc:
            raise ArtifactError(f"{artifact.path}: the library does not load on this machine: "
                                f"{str(exc).strip().splitlines()[-1][:300]}") from exc


class CompiledModule:
    """A loaded model: call it with numpy arrays (by position or name), get numpy arrays back.

    Safe to call from several threads: each thread gets its own virtual machine over the one
    loaded library.
    """

    def __init__(self, artifact: Artifact, library, device_id: int = 0):
        self.artifact = artifact
        self.inputs: tuple[TensorSpec, ...] = artifact.inputs
        self.outputs: tuple[TensorSpec, ...] = artifact.outputs
        self._library = library
        self._device = _device(artifact, device_id)
        self._local = threading.local()

    @property
    def input_names(self) -> list[str]:
        """Input names, in call order."""
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Output names, in return order."""
        return [t.name for t in self.outputs]

    def __call__(self, *args, **kwargs) -> list[np.ndarray]:
        """Run the model; inputs by position or by name; returns the outputs in order."""
        arrays = bind_inputs(self.inputs, args, kwargs)
        return self.run(arrays)

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run on already-checked inputs, in signature order."""
        import tvm.runtime

        vm = self._vm()
        tensors = [tvm.runtime.tensor(a, self._device) for a in arrays]
        result = vm["main"](*tensors)
        results = list(result) if not hasattr(result, "numpy") else [result]
        return [r.numpy() for r in results]

    def _vm(self):
        vm = getattr(self._local, "vm", None)
        if vm is None:
            from tvm.runtime.vm import VirtualMachine

            vm = VirtualMachine(self._library, self._device)
            self._local.vm = vm
        return vm

    def __repr__(self) -> str:
        ins = ", ".join(t.describe() for t in self.inputs)
        return f"<CompiledModule {self.artifact.target_name} ({ins})>"


def _device(artifact: Artifact, device_id: int):
    import tvm.runtime

    kind = artifact.manifest["runtime"]["device"]
    device = tvm.runtime.device(_DEVICE_KINDS[kind], device_id)
    if kind != "cpu" and not device.exist:
        raise ArtifactError(f"{artifact.path}: built for a {kind} device "
                            f"(target '{artifact.target_name}'), and this machine has no "
                            f"{kind} device {device_id}")
    return device


def bind_inputs(specs: tuple[TensorSpec, ...], args: tuple, kwargs: Mapping) -> list[np.ndarray]:
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
    return [_check_array(spec, given[spec.name]) for spec in specs]


def _check_array(spec: TensorSpec, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype != np.dtype(spec.dtype):
        raise InputError(f"input '{spec.name}' has dtype {array.dtype}, expected {spec.dtype}",
                         hint=f"cast it, e.g. x.astype('{spec.dtype}')")
    if tuple(array.shape) != spec.shape:
        raise InputError(f"input '{spec.name}' has shape {list(array.shape)}, expected "
                         f"{list(spec.shape)}")
    return np.ascontiguousarray(array)

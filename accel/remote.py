"""Run an artifact on a remote device through a TVM RPC tracker: upload, load, run, time.

The client side needs the full ``tvm`` package (``tvm.rpc``); the device needs only a TVM
runtime and an RPC server registered under a key (see accel/emulation for one under QEMU).
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

import numpy as np

from .artifact import Artifact, open_artifact
from .errors import ArtifactError
from .runtime import bind_inputs
from .signature import NamedIO
from .timing import Stats
from .tuning.farm import FarmError, require_devices
from .tuning.options import RPCOptions

#: Seconds to wait for the tracker's TCP port, and for a free device under the key.
CONNECT_TIMEOUT_S = 10
REQUEST_TIMEOUT_S = 60
_DEVICE_TYPES = {"cpu": 1, "cuda": 2, "opencl": 4}
_POOLED_ALLOCATOR = 2


def load_remote(path: str | os.PathLike, rpc: RPCOptions, *,
                session_timeout_s: int = 600) -> RemoteModule:
    """Open an artifact and load it on a device of the tracker's key.

    Parameters
    ----------
    path : path
        An ``.accel`` file with a shared library for the device's architecture.
    rpc : RPCOptions
        Tracker address and device key (``RPCOptions.parse("HOST:PORT", "KEY")``).
    session_timeout_s : int
        How long the server keeps the session (and the loaded model) alive.

    Returns
    -------
    RemoteModule
    """
    artifact = open_artifact(path)
    if artifact.manifest["library"]["format"] != "shared-library":
        raise ArtifactError(f"{artifact.path}: built for target '{artifact.target_name}' as an "
                            "object archive; link it on the device first")
    session = request_session(rpc, session_timeout_s=session_timeout_s)
    return RemoteModule(artifact, session)


def request_session(rpc: RPCOptions, *, session_timeout_s: int = 600):
    """An RPC session on a free device under the key; bounded waits, FarmError on failure."""
    _check_port(rpc)
    require_devices(rpc)
    from tvm import rpc as tvm_rpc

    result: dict = {}

    def request():
        try:
            tracker = tvm_rpc.connect_tracker(rpc.tracker_host, rpc.tracker_port)
            result["session"] = tracker.request(rpc.key, session_timeout=session_timeout_s)
        except Exception as exc:  # TVM raises plain socket and RPC errors
            result["error"] = exc

    worker = threading.Thread(target=request, daemon=True)
    worker.start()
    worker.join(REQUEST_TIMEOUT_S)
    if "session" not in result:
        why = _last_line(result["error"]) if "error" in result else \
            f"no device under key '{rpc.key}' became free within {REQUEST_TIMEOUT_S} s"
        raise FarmError(f"cannot open an RPC session at {rpc.tracker_host}:"
                        f"{rpc.tracker_port}: {why}")
    return result["session"]


def _check_port(rpc: RPCOptions) -> None:
    try:
        socket.create_connection((rpc.tracker_host, rpc.tracker_port),
                                 timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise FarmError(f"cannot reach the RPC tracker at {rpc.tracker_host}:"
                        f"{rpc.tracker_port} ({exc.strerror or exc})",
                        hint="start one with python -m tvm.exec.rpc_tracker --port P "
                             "--port-end Q") from None


def _last_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


class RemoteModule(NamedIO):
    """A model loaded on a remote device: call it with arrays, get numpy arrays back."""

    def __init__(self, artifact: Artifact, session):
        self.artifact = artifact
        self.inputs = artifact.inputs
        self.outputs = artifact.outputs
        self._session = session
        self._kind = artifact.manifest["runtime"]["device"]
        self._device = session.device(_DEVICE_TYPES[self._kind], 0)
        self._vm = _remote_vm(artifact, session, self._kind)

    def __call__(self, *args, **kwargs) -> list[np.ndarray]:
        """Run once: send the inputs, run on the device, fetch the outputs."""
        self.set_inputs(*args, **kwargs)
        self._vm["invoke_stateful"]("main")
        return self._fetch_outputs()

    def set_inputs(self, *args, **kwargs) -> None:
        """Send inputs (checked against the signature) to the device, for ``runner``."""
        import tvm

        local = bind_inputs(self.inputs, args, kwargs)
        remote = [tvm.runtime.tensor(np.from_dlpack(t), self._device) for t in local]
        self._vm["set_input"]("main", *remote)

    def runner(self, inputs: dict):
        """A zero-argument callable that runs on inputs already on the device (for timing)."""
        self.set_inputs(**inputs)
        invoke = self._vm["invoke_stateful"]
        return lambda: invoke("main")

    def time(self, inputs: dict, *, number: int = 10, repeat: int = 5) -> Stats:
        """Per-call latency measured on the device (TVM's remote time evaluator)."""
        self.set_inputs(**inputs)
        evaluator = self._vm.time_evaluator("invoke_stateful", self._device, number=number,
                                            repeat=repeat)
        return Stats(tuple(float(s) * 1e3 for s in evaluator("main").results))

    def _fetch_outputs(self) -> list[np.ndarray]:
        arity = self._vm["get_output_arity"]("main")
        if arity < 0:  # a single tensor, not a tuple
            return [self._vm["get_output"]("main").numpy()]
        return [self._vm["get_output"]("main", i).numpy() for i in range(arity)]

    def __repr__(self) -> str:
        return f"<RemoteModule {self.artifact.target_name} on {self._device}>"


def _remote_vm(artifact: Artifact, session, kind: str):
    """Upload the library, load it remotely and initialize a Relax VM on the device."""
    name = Path(artifact.manifest["library"]["path"]).name
    with tempfile.TemporaryDirectory(prefix="accel-remote-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(artifact.library_bytes())
        session.upload(str(path))
    try:
        library = session.load_module(name)
        vm = library["vm_load_executable"]()
        args = [_DEVICE_TYPES[kind], 0, _POOLED_ALLOCATOR]
        if kind != "cpu":  # shape functions and host code run on the device's CPU
            args += [_DEVICE_TYPES["cpu"], 0, _POOLED_ALLOCATOR]
        vm["vm_initialization"](*args)
    except Exception as exc:
        raise ArtifactError(f"{artifact.path}: the library does not load on the remote device "
                            f"(target '{artifact.target_name}'): {_last_line(exc)}") from exc
    return vm


def load_local_or_remote(path: str | os.PathLike, *, tracker: str | None = None,
                         key: str | None = None, emulate: bool = False):
    """``accel.load`` here, :func:`load_remote` when a tracker (``HOST:PORT``) is given, or the
    OpenCL kernels on this machine's OpenCL device with ``emulate``."""
    if emulate:
        if tracker is not None:
            from .errors import UsageError

            raise UsageError("--emulate runs here; it cannot be combined with --rpc-tracker")
        from .opencl.emulate import load_emulated

        return load_emulated(path)
    if tracker is None:
        if key is not None:
            from .errors import UsageError

            raise UsageError("--rpc-key needs --rpc-tracker HOST:PORT")
        from .runtime import load

        return load(path)
    return load_remote(path, RPCOptions.parse(tracker, key))


def add_device_arguments(parser) -> None:
    """Where `accel run` and `accel bench` run: --rpc-tracker / --rpc-key, or --emulate."""
    parser.add_argument("--rpc-tracker", metavar="HOST:PORT",
                        help="run on a remote device registered with this TVM RPC tracker")
    parser.add_argument("--rpc-key", metavar="KEY", help="the device key, e.g. rpi4")
    parser.add_argument("--emulate", action="store_true",
                        help="run an OpenCL (Mali, Adreno) artifact's kernels on this machine's "
                             "OpenCL device, e.g. PoCL")

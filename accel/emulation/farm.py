"""A local RPC device farm: a TVM tracker on 127.0.0.1 and AArch64 servers under qemu-user.

``python -m accel.emulation.farm --key rpi4`` starts one and prints the tracker address for
``accel run ARTIFACT --rpc-tracker 127.0.0.1:PORT --rpc-key rpi4``.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..tuning.farm import devices
from ..tuning.options import RPCOptions
from .sysroot import EmulationError, ensure_sysroot, python_command

HOST = "127.0.0.1"
#: Seconds a QEMU server may take to start and register (Python + TVM import: about 10 s).
REGISTER_TIMEOUT_S = 120
_SERVER = Path(__file__).with_name("qemu_rpc_server.py")


@contextlib.contextmanager
def local_farm(key: str, *, cache: Path, servers: int = 1, log_dir: Path | None = None):
    """Start a tracker and ``servers`` emulated AArch64 servers under ``key``; yield RPCOptions.

    Every process is stopped on exit. The sysroot is built under ``cache`` on first use.
    """
    sysroot = ensure_sysroot(cache)
    log_dir = Path(log_dir or cache / "logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        port = _free_port()
        procs.append(_spawn([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", HOST,
                             "--port", str(port), "--port-end", str(port + 1)],
                            log_dir / "tracker.log"))
        _wait_port(port, procs[0])
        rpc = RPCOptions(HOST, port, key)
        for i in range(servers):
            base = _free_port()
            procs.append(_spawn([*python_command(sysroot), str(_SERVER), "--tracker",
                                 f"{HOST}:{port}", "--key", key, "--port", str(base),
                                 "--port-end", str(base + 50)], log_dir / f"server{i}.log"))
        _wait_registered(rpc, servers, procs, log_dir)
        yield rpc
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop one process we started (and its session: a server forks one child per session)."""
    import os
    import signal

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulationError(f"the RPC tracker exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), timeout=1).close()
            return
        time.sleep(0.2)
    raise EmulationError(f"the RPC tracker did not open port {port} within {timeout_s} s")


def _wait_registered(rpc: RPCOptions, count: int, procs: list[subprocess.Popen],
                     log_dir: Path) -> None:
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise EmulationError(f"an emulated RPC server exited with code "
                                 f"{dead[0].returncode} (logs in {log_dir})")
        if len(devices(rpc)) >= count:
            return
        time.sleep(1)
    raise EmulationError(f"{count} QEMU RPC server(s) did not register under '{rpc.key}' "
                         f"within {REGISTER_TIMEOUT_S} s")


def main(argv: list[str] | None = None) -> int:
    """Start a farm and keep it up until interrupted."""
    import argparse
    import signal

    from ..env import cache_dir

    # Stop the servers on SIGTERM too, and on Ctrl-C even where a shell started us ignoring it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)

    parser = argparse.ArgumentParser(prog="python -m accel.emulation.farm")
    parser.add_argument("--key", default="aarch64-linux", help="device key (default "
                        "aarch64-linux)")
    parser.add_argument("--servers", type=int, default=1)
    args = parser.parse_args(argv)
    with local_farm(args.key, cache=cache_dir() / "emulation", servers=args.servers) as rpc:
        print(f"tracker {rpc.tracker_host}:{rpc.tracker_port} key {rpc.key}: "
              f"{len(devices(rpc))} device(s); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())

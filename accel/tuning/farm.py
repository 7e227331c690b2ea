"""Where candidates are measured: this machine, or every device under a key of an RPC tracker."""

from __future__ import annotations

from ..errors import AccelError
from .options import RPCOptions


class FarmError(AccelError):
    """The device farm cannot be reached, or has no device under the key."""

    exit_code = 14


def runner(rpc: RPCOptions | None, *, workers: int):
    """A MetaSchedule runner: local, or RPC over every server registered under the key."""
    from tvm.s_tir import meta_schedule as ms

    evaluator = ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=20,
                                          enable_cpu_cache_flush=False)
    from .arguments import local_alloc, rpc_alloc
    from .build import die_with_parent

    if rpc is None:
        return ms.runner.LocalRunner(timeout_sec=30, evaluator_config=evaluator,
                                     f_alloc_argument=local_alloc, initializer=die_with_parent)
    config = ms.runner.RPCConfig(tracker_host=rpc.tracker_host, tracker_port=rpc.tracker_port,
                                 tracker_key=rpc.key, session_timeout_sec=rpc.session_timeout_s)
    return ms.runner.RPCRunner(rpc_config=config, evaluator_config=evaluator,
                               f_alloc_argument=rpc_alloc, max_workers=max(1, workers),
                               initializer=die_with_parent)


def devices(rpc: RPCOptions) -> list[str]:
    """The servers registered under the key, as ``host:port`` (raises FarmError if none)."""
    summary = _summary(rpc)
    found = sorted(f"{info['addr'][0]}:{info['addr'][1]}"
                   for info in summary.get("server_info", [])
                   if str(info.get("key", "")).split(":")[-1] == rpc.key
                   or str(info.get("key", "")) == f"server:{rpc.key}")
    return found


def reachable(device: str, timeout_s: float = 2.0) -> bool:
    """Whether something listens at ``host:port`` (for the tracker: never probe a device
    server this way, which would take the connection for a session)."""
    import socket

    host, _, port = device.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_devices(rpc: RPCOptions) -> list[str]:
    """Like :func:`devices`, but an empty farm is an error naming the key and the tracker."""
    found = devices(rpc)
    if not found:
        keys = sorted(_summary(rpc).get("queue_info", {}))
        raise FarmError(f"no device is registered under key '{rpc.key}' at tracker "
                        f"{rpc.tracker_host}:{rpc.tracker_port}",
                        hint=f"keys there: {', '.join(keys) or 'none'}")
    return found


def _summary(rpc: RPCOptions) -> dict:
    from tvm import rpc as tvm_rpc

    if not reachable(f"{rpc.tracker_host}:{rpc.tracker_port}"):  # TVM would retry for 60 s
        raise FarmError(f"cannot reach the RPC tracker at {rpc.tracker_host}:{rpc.tracker_port}",
                        hint="start it with python -m tvm.exec.rpc_tracker --port P "
                             "--port-end Q")
    try:
        return tvm_rpc.connect_tracker(rpc.tracker_host, rpc.tracker_port).summary()
    except Exception as exc:  # TVM raises plain socket and RPC errors
        raise FarmError(f"cannot reach the RPC tracker at {rpc.tracker_host}:"
                        f"{rpc.tracker_port} ({str(exc).strip().splitlines()[-1][:200]})",
                        hint="start it with python -m tvm.exec.rpc_tracker --port P "
                             "--port-end Q") from None

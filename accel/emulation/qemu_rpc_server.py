"""A TVM RPC server for a runtime-only TVM (under QEMU): no popen worker, no compiler library.

Run as a script by the emulated Python (it imports only ``tvm`` in runtime-only mode, never
accel). ``tvm.exec.rpc_server`` starts a popen worker by exec'ing a second interpreter, which
under qemu-user needs binfmt_misc (root); this serves in-process and forks per session instead.
"""

import argparse
import os
import sys


def main(argv=None) -> int:
    """Bind, register with the tracker under the key, serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracker", required=True, help="HOST:PORT")
    parser.add_argument("--key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--port-end", type=int, default=9199)
    args = parser.parse_args(argv)
    os.environ.setdefault("TVM_USE_RUNTIME_LIB", "1")
    import tvm
    from tvm.rpc.server import PopenRPCServerState

    # Without the extra runtime (RPC time evaluator, ...) remote measurements fail silently.
    extra = os.path.join(os.path.dirname(tvm.__file__), "lib", "libtvm_runtime_extra.so")
    host, port = args.tracker.rsplit(":", 1)
    state = PopenRPCServerState(args.host, args.port, args.port_end, tracker_addr=(host, int(port)),
                                key=args.key, load_library=extra, custom_addr=args.host)
    print(f"accel-qemu-rpc-server ready on {args.host}:{state.port}", flush=True)
    state.thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())

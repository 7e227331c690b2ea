"""CLI: cold and cached compile, load, first and steady inference, import time and memory.

Every load figure comes from a fresh Python process, as a production service would see it; the
"tvm runtime" row is what loading through `import tvm` (the old load path) costs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from models import MODELS, export_onnx

# ru_maxrss survives exec (it would report the parent's peak); VmHWM is this process's own.
_PEAK_RSS = textwrap.dedent("""
    def peak_rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
""")
_LOAD = _PEAK_RSS + textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import accel
    t1 = time.perf_counter()
    module = accel.load(sys.argv[1])
    t2 = time.perf_counter()
    inputs = [np.random.default_rng(0).standard_normal(s.shape).astype(s.dtype)
              for s in module.inputs]
    module(*inputs)
    t3 = time.perf_counter()
    steady = []
    for _ in range(int(sys.argv[2])):
        s = time.perf_counter(); module(*inputs); steady.append(time.perf_counter() - s)
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_s": t3 - t2,
                      "steady_s": sorted(steady)[len(steady) // 2],
                      "rss_mib": peak_rss_mib(), "torch_imported": "torch" in sys.modules}))
""")
_TVM_IMPORT = _PEAK_RSS + textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import tvm.runtime
    print(json.dumps({"import_s": time.perf_counter() - t0, "rss_mib": peak_rss_mib()}))
""")


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="resnet18,mobilenetv2",
                        help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--target", default="host")
    parser.add_argument("--calls", type=int, default=20, help="steady-state calls per load")
    return parser.parse_args(argv)


def _fresh(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _timed_cli(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "accel", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def bench(name: str, workdir: Path, args) -> dict:
    """Every figure for one model, in seconds (and MiB)."""
    import accel

    onnx_path = export_onnx(name, workdir / f"{name}.onnx")
    out = workdir / f"{name}.accel"
    start = time.perf_counter()
    accel.compile(onnx_path, args.target, output=out, cache="redo")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    assert accel.compile(onnx_path, args.target, output=out).cached
    warm = time.perf_counter() - start
    cli_warm = _timed_cli("compile", str(onnx_path), "-t", args.target, "-o", str(out))
    load = _fresh(_LOAD, str(out), str(args.calls))
    return {"model": name, "cold compile s": f"{cold:.2f}", "cached compile s": f"{warm:.3f}",
            "cached compile, CLI process s": f"{cli_warm:.2f}",
            "import accel s": f"{load['import_s']:.2f}", "load s": f"{load['load_s']:.3f}",
            "first call ms": f"{load['first_s'] * 1e3:.1f}",
            "steady call ms": f"{load['steady_s'] * 1e3:.1f}",
            "load RSS MiB": f"{load['rss_mib']:.0f}",
            "torch imported": str(load["torch_imported"])}


def main(argv=None) -> int:
    """Print one table row per model, and the cost of `import tvm.runtime` for comparison."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="accel-bench-cache-") as tmp:
        rows = [bench(m.strip(), Path(tmp), args) for m in args.models.split(",") if m.strip()]
    tvm = _fresh(_TVM_IMPORT)
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[c] for c in columns) + " |")
    print(f"\nfor comparison, `import tvm.runtime` in a fresh process: {tvm['import_s']:.2f} s, "
          f"{tvm['rss_mib']:.0f} MiB RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CLI: time each fused kernel (PrimFunc) of a benchmark model as accel builds it, alone."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from models import MODELS, export_onnx


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=list(MODELS))
    parser.add_argument("--target", default="host", help="accel target name (default host)")
    parser.add_argument("--layout", default=None, help="--desired-layout value")
    parser.add_argument("--top", type=int, default=25, help="rows to print (default 25)")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per kernel")
    return parser.parse_args(argv)


def scheduled_module(onnx_path: Path, target_name: str, layout: str | None):
    """The model's module after accel's pipeline up to (and including) the schedule phase."""

    from accel.model import load_model
    from accel.options import CompileOptions
    from accel.pipeline import run_until_lower
    from accel.target import get_target

    options = CompileOptions(desired_layout=layout)
    spec = get_target(target_name)
    mod = run_until_lower(load_model(str(onnx_path), options=options).mod, spec, options)
    target = spec.tvm_target()
    return mod, target


def call_counts(mod) -> dict[str, int]:
    """How many times each PrimFunc is called from the Relax functions."""
    import tvm
    from tvm import relax

    counts: dict[str, int] = {}

    def visit(expr):
        if isinstance(expr, relax.Call):
            for arg in expr.args:
                if isinstance(arg, tvm.ir.GlobalVar):
                    counts[arg.name_hint] = counts.get(arg.name_hint, 0) + 1

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return counts


def time_kernel(func, target, repeat: int) -> float:
    """Median milliseconds of one call of a PrimFunc on random arguments."""
    import tvm

    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target)
    dev = tvm.cpu()
    rng = np.random.default_rng(0)
    args = []
    for buf in func.params:
        shape = [int(d) for d in buf.shape]
        data = rng.standard_normal(shape).astype(buf.dtype) if "float" in str(buf.dtype) \
            else np.zeros(shape, buf.dtype)
        args.append(tvm.runtime.tensor(data, dev))
    timer = lib.mod.time_evaluator("main", dev, number=repeat, repeat=3, min_repeat_ms=50)
    return float(np.median(timer(*args).results)) * 1e3


def main(argv: list[str] | None = None) -> int:
    """Print the kernels by total time (per-call time x calls), with their share."""
    import tvm

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="accel-prof-") as tmp:
        name = args.model
        onnx_path = export_onnx(name, Path(tmp) / f"{name}.onnx", 17, verify=False)
        mod, target = scheduled_module(onnx_path, args.target, args.layout)
    counts = call_counts(mod)
    rows = []
    for gv, func in mod.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc) and counts.get(gv.name_hint):
            ms = time_kernel(func, target, args.repeat)
            shapes = " ".join("x".join(str(int(d)) for d in b.shape) for b in func.params)
            rows.append((ms * counts[gv.name_hint], ms, counts[gv.name_hint], gv.name_hint,
                         shapes))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"{name}: {len(rows)} kernels, sum {total:.2f} ms")
    print("| total ms | share | ms/call | calls | kernel | argument shapes |")
    print("|---|---|---|---|---|---|")
    for tot, ms, n, kname, shapes in rows[:args.top]:
        print(f"| {tot:.3f} | {100 * tot / total:.1f}% | {ms:.3f} | {n} | {kname} | {shapes} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

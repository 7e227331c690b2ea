"""CLI: time the artifacts two accel checkouts compile for the same models against onnxruntime,
interleaved in one process (a before/after table for a change)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from models import MODELS, build, export_onnx, max_diffs, ort_session
from timing import render_table, time_interleaved

_COMPILE = ("import accel, sys; accel.compile(sys.argv[1], sys.argv[2], output=sys.argv[3], "
            "cache='off')")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path, help="checkout compiled as 'before'")
    parser.add_argument("after", type=Path, help="checkout compiled as 'after'")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--target", default="host")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    return args


def compile_with(checkout: Path, onnx_path: Path, target: str, out: Path) -> Path:
    """Compile in a fresh interpreter that imports accel from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    subprocess.run([sys.executable, "-c", _COMPILE, str(onnx_path), target, str(out)],
                   check=True, env=env, stderr=subprocess.DEVNULL)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one table: onnxruntime, before and after per model, with output differences."""
    import accel

    args = parse_args(argv)
    results, extra = {}, {}
    with tempfile.TemporaryDirectory(prefix="accel-ab-") as tmp:
        for name in args.models:
            _, inputs, names = build(name)
            onnx_path = export_onnx(name, Path(tmp) / f"{name}.onnx", verify=False)
            feeds = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
            session = ort_session(onnx_path)
            runners = {"onnxruntime": lambda s=session, f=feeds: s.run(None, f)}
            for label, checkout in (("before", args.before), ("after", args.after)):
                art = compile_with(checkout, onnx_path, args.target,
                                   Path(tmp) / f"{name}-{label}.accel")
                module = accel.load(str(art))
                runners[label] = lambda m=module, f=feeds: m(**f)
            expected = runners["onnxruntime"]()
            extra[name] = {k: {"max abs diff": f"{max_diffs(runners[k](), expected)[0]:.1e}"}
                           for k in ("before", "after")}
            results[name] = time_interleaved(runners, rounds=args.rounds, calls=args.calls)
            print(f"{name}: done", file=sys.stderr, flush=True)
    print(render_table(results, baseline="onnxruntime", extra=extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CLI: time accel against onnxruntime and eager PyTorch on the benchmark models, interleaved."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from models import MODELS, build, export_onnx, max_diffs, ort_session
from timing import Timing, render_table, time_interleaved

BASELINE = "onnxruntime"
Runner = Callable[[], list[np.ndarray]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from: {', '.join(MODELS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, default=10, help="calls per runner per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per runner first")
    parser.add_argument("--target", default="host", help="accel target name (default host)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--fold-bn-at-export", action="store_true",
                        help="let the exporter fold BatchNorm (default: leave it to accel)")
    parser.add_argument("--workdir", type=Path, help="keep ONNX files and artifacts here")
    parser.add_argument("--no-accel", action="store_true",
                        help="time onnxruntime and torch only")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return args


def import_accel():
    """The accel package, or SystemExit with a clear message when it is missing or incomplete."""
    try:
        import accel
    except Exception as exc:
        raise SystemExit(f"error: cannot import accel ({type(exc).__name__}: {exc}); "
                         "install it (pip install -e .) or pass --no-accel") from exc
    missing = [name for name in ("compile", "load") if not hasattr(accel, name)]
    if missing:
        raise SystemExit(f"error: accel has no {', '.join(missing)} yet; pass --no-accel")
    return accel


def torch_runner(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> Runner:
    """Eager PyTorch in inference mode, outputs as numpy."""
    def run() -> list[np.ndarray]:
        with torch.inference_mode():
            return [model(*inputs).numpy()]
    return run


def ort_runner(onnx_path: Path, feeds: dict[str, np.ndarray]) -> Runner:
    """onnxruntime, CPU provider, default session options."""
    session = ort_session(onnx_path)
    return lambda: session.run(None, feeds)


def accel_runner(accel, onnx_path: Path, feeds: dict[str, np.ndarray], *, target: str,
                 artifact: Path) -> Runner:
    """Compile the ONNX file with accel, load the artifact, call it by input name."""
    start = time.perf_counter()
    accel.compile(str(onnx_path), target, output=str(artifact))
    module = accel.load(str(artifact))
    log(f"  accel: compiled for {target} and loaded in {time.perf_counter() - start:.1f} s")
    return lambda: module(**feeds)


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


def make_runners(name: str, workdir: Path, args, accel, notes: list[str]) -> dict[str, Runner]:
    """Export ``name`` and build its runners; an accel failure goes to ``notes`` instead."""
    start = time.perf_counter()
    model, inputs, input_names = build(name)
    onnx_path = export_onnx(name, workdir / f"{name}.onnx", args.opset,
                            keep_batchnorm=not args.fold_bn_at_export)
    log(f"{name}: exported and checked against torch in {time.perf_counter() - start:.1f} s")
    feeds = {n: t.numpy() for n, t in zip(input_names, inputs, strict=True)}
    runners = {BASELINE: ort_runner(onnx_path, feeds), "torch": torch_runner(model, inputs)}
    if accel is not None:
        try:
            runners["accel"] = accel_runner(accel, onnx_path, feeds, target=args.target,
                                            artifact=workdir / f"{name}.accel")
        except getattr(accel, "AccelError", ()) as exc:  # user-fixable: report, bench the rest
            notes.append(f"accel failed on {name}: {type(exc).__name__}: {exc}")
            log(f"  {notes[-1]}")
    return runners


def output_diffs(runners: dict[str, Runner]) -> dict[str, dict[str, str]]:
    """Max abs and rel difference of each runner's outputs from the baseline's."""
    expected = runners[BASELINE]()
    diffs = {}
    for runner, run in runners.items():
        if runner != BASELINE:
            abs_diff, rel_diff = max_diffs(run(), expected)
            diffs[runner] = {"max abs diff": f"{abs_diff:.2e}", "max rel diff": f"{rel_diff:.2e}"}
    return diffs


def bench_model(name: str, workdir: Path, args, accel, notes: list[str]):
    """Timings and output differences of every runner on one model."""
    runners = make_runners(name, workdir, args, accel, notes)
    diffs = output_diffs(runners)
    timings = time_interleaved(runners, rounds=args.rounds, calls=args.calls,
                               warmup=args.warmup)
    log(f"  timed {', '.join(f'{r} {t.median_ms:.2f} ms' for r, t in timings.items())}")
    return timings, diffs


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; exit code 1 when accel failed on some model."""
    args = parse_args(argv)
    accel = None if args.no_accel else import_accel()
    results: dict[str, dict[str, Timing]] = {}
    extra: dict[str, dict[str, dict[str, str]]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="accel-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        log(f"torch threads {torch.get_num_threads()}; files in {workdir}")
        for name in args.models:
            results[name], extra[name] = bench_model(name, workdir, args, accel, notes)
    print(render_table(results, baseline=BASELINE, extra=extra))
    if notes:
        print("\n" + "\n".join(notes))
    return 1 if notes else 0


if __name__ == "__main__":
    sys.exit(main())

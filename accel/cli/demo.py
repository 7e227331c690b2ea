"""`accel demo`: the main job on the embedded default (bundled example model, this host)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("-t", "--target", default=None, help="named target (default: host)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")


def run(args) -> int:
    """Compile the bundled example, check it against onnxruntime, print both latencies."""
    import tempfile
    from pathlib import Path

    from ..benchmark import compare
    from ..compiler import compile as compile_model
    from ..examples import example_model
    from ..runtime import load
    from ..timing import render_table

    model = example_model()
    with tempfile.TemporaryDirectory(prefix="accel-demo-") as tmp:
        out = Path(tmp) / "example.accel"
        artifact = compile_model(model, args.target, output=out)
        report = artifact.manifest["report"]
        compile_s = sum(p["seconds"] for p in report["phases"])
        print(f"compiled {model.name} for '{artifact.target_name}' in {compile_s:.1f} s "
              f"({report['kernels']} kernels)")
        module = load(out)
        rows, diffs = compare(module, model=model, references=("onnxruntime",),
                              rounds=args.rounds)
    print(render_table(rows))
    print(f"max |accel - onnxruntime| = {diffs['onnxruntime']:.3g}")
    return 0

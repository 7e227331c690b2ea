"""Weight-only quantization: accel float32 vs int8-weight vs int4-weight at batch 1, timed
interleaved in one run, with onnxruntime float32 beside; artifact and weight sizes, and the
error against float32.

    cd benchmarks && PYTHONPATH=.. python bench_quant_weight.py --models mlp,bert4
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from timing import render_table, time_interleaved

MODES = (None, "int8-weight", "int4-weight")
BASELINE = "accel fp32"


def llm_mlp(hidden: int = 1024, inter: int = 4096) -> onnx.ModelProto:
    """An LLM MLP block at batch 1: up-projection, erf GELU, down-projection, residual."""
    rng = np.random.default_rng(0)
    weights = {"up": rng.standard_normal((hidden, inter)) / np.sqrt(hidden),
               "up_b": 0.1 * rng.standard_normal(inter),
               "down": rng.standard_normal((inter, hidden)) / np.sqrt(inter),
               "down_b": 0.1 * rng.standard_normal(hidden),
               "sqrt2": np.sqrt(2.0), "one": 1.0, "half": 0.5}
    nodes = [helper.make_node("MatMul", ["x", "up"], ["u"]),
             helper.make_node("Add", ["u", "up_b"], ["h"]),
             helper.make_node("Div", ["h", "sqrt2"], ["hs"]),
             helper.make_node("Erf", ["hs"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]),
             helper.make_node("Mul", ["h", "e1"], ["he"]),
             helper.make_node("Mul", ["he", "half"], ["g"]),
             helper.make_node("MatMul", ["g", "down"], ["d"]),
             helper.make_node("Add", ["d", "down_b"], ["db"]),
             helper.make_node("Add", ["db", "x"], ["output"])]
    graph = helper.make_graph(
        nodes, "llm_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, hidden])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, hidden])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def model_file(name: str, workdir: Path) -> Path:
    """The benchmark model as an ONNX file."""
    path = workdir / f"{name}.onnx"
    if name == "mlp":
        onnx.save(llm_mlp(), path)
        return path
    from models import export_onnx

    return export_onnx(name, path)


def feeds_for(path: Path) -> dict[str, np.ndarray]:
    """Seeded inputs: normal floats, token ids below 1000."""
    rng = np.random.default_rng(1)
    feeds = {}
    for vi in onnx.load(path, load_external_data=False).graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            feeds[vi.name] = rng.integers(0, 1000, shape).astype(np.int64)
    return feeds


def compiled(path: Path, mode, workdir: Path, group_size: int):
    """(loaded module, artifact bytes, matmul-weight bytes) for one quantization mode."""
    import accel
    from accel.model import load_model
    from accel.options import CompileOptions
    from accel.quantize import QuantizeOptions

    quantize = QuantizeOptions(mode=mode, group_size=group_size) if mode else None
    artifact = accel.compile(path, "host", options=CompileOptions(quantize=quantize),
                             cache="off", output=workdir / f"{path.stem}-{mode or 'fp32'}.accel")
    return accel.load(artifact.path), artifact.path.stat().st_size, \
        _matmul_weight_bytes(load_model(path), mode, group_size)


def _matmul_weight_bytes(model, mode, group_size: int) -> int:
    """Bytes of the matmul weights (with their scales) as the artifact stores them: the
    module's constant bytes minus those of everything that is not a quantizable weight."""
    from tvm import relax

    from accel.passes import FoldSimpleConstants
    from accel.passes.quantize_matmul_weights import quantizable_weight
    from accel.quantize import QuantizeOptions
    from accel.quantize.weight_only import quantize_weights, weight_bytes
    from accel.target import get_target

    folded = FoldSimpleConstants()(model.mod)
    weights = []
    relax.analysis.post_order_visit(folded["main"], lambda e: isinstance(e, relax.Call)
                                    and quantizable_weight(e) and weights.append(e.args[1]))
    fp32 = sum(w.value.numpy().nbytes for w in weights)
    if mode is None:
        return fp32
    options = QuantizeOptions(mode=mode, group_size=group_size)
    quantized = quantize_weights(model, get_target("host"), options).mod
    return sum(weight_bytes(quantized).values()) - sum(weight_bytes(folded).values()) + fp32


def bench(name: str, workdir: Path, args):
    """Timings, sizes and errors of every runner for one model."""
    from models import ort_session

    path = model_file(name, workdir)
    feeds = feeds_for(path)
    session = ort_session(path)
    reference = session.run(None, feeds)[0]
    runners, extra = {"onnxruntime": lambda: session.run(None, feeds)}, {}
    extra["onnxruntime"] = {"artifact MiB": f"{path.stat().st_size / 2**20:.1f}"}
    for mode in MODES:
        module, size, weights = compiled(path, mode, workdir, args.group_size)
        label = f"accel {mode or 'fp32'}"
        runners[label] = (lambda m=module: m(**feeds))
        out = module(**feeds)[0]
        error = np.linalg.norm(out - reference) / np.linalg.norm(reference)
        extra[label] = {"artifact MiB": f"{size / 2**20:.1f}",
                        "matmul weights MiB": f"{weights / 2**20:.2f}",
                        "rel. L2 error": f"{error:.2e}"}
    timings = time_interleaved(runners, rounds=args.rounds, calls=args.calls, warmup=2)
    return timings, extra


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,bert4", help="comma-separated: mlp, bert4")
    parser.add_argument("--group-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Run every model and print one table (ratios against accel's own float32)."""
    args = parse_args(argv)
    results, extras = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            timings, extra = bench(name, Path(tmp), args)
            results[name], extras[name] = timings, extra
    print(render_table(results, baseline=BASELINE, extra=extras))


if __name__ == "__main__":
    main()

"""CLI: int8 against float32, accel and onnxruntime, interleaved, on ResNet-18 and MobileNetV2.

For each model: accel fp32, accel int8, onnxruntime fp32 and onnxruntime int8 (the models
onnxruntime's ``quantize_static`` makes: QOperator and QDQ, per-channel int8 weights, uint8
activations), timed interleaved in one run, with ratios, output agreement and the artifact's
size (int8 against fp32). accel's int8 artifact comes from ``--int8-from``: onnxruntime's
QOperator model through accel's QLinearConv / QLinearMatMul converters (default), its QDQ model,
or accel's own ``--quantize int8`` with the same calibration images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from models import IMAGE_SHAPE, export_onnx, ort_session
from timing import Timing, render_table, time_interleaved

BASELINE = "accel fp32"
CNN_MODELS = ("resnet18", "mobilenetv2")
SOURCES = ("qoperator", "qdq", "accel")
#: What quantize_static quantizes: the convs and matmuls, with the ReLU/Clip and max pool
#: between them folded into the integer graph (adds and pools stay float between Q/DQ).
QUANTIZED_OPS = ["Conv", "MatMul", "Relu", "Clip", "MaxPool"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(CNN_MODELS),
                        help=f"comma-separated, from: {', '.join(CNN_MODELS)}")
    parser.add_argument("--int8-from", choices=SOURCES, default="qoperator",
                        help="where accel's int8 model comes from (default qoperator)")
    parser.add_argument("--calibration", type=int, default=8,
                        help="seeded random calibration images (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, default=5, help="calls per runner per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per runner first")
    parser.add_argument("--target", default="host", help="accel target name (default host)")
    parser.add_argument("--workdir", type=Path, help="keep ONNX files and artifacts here")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in CNN_MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(CNN_MODELS)}")
    return args


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(message, file=sys.stderr, flush=True)


def calibration_images(count: int) -> list[dict[str, np.ndarray]]:
    """Seeded N(0, 1) images, the distribution the benchmark models' BatchNorms were fit on."""
    rng = np.random.default_rng(1)
    return [{"input": rng.standard_normal(IMAGE_SHAPE).astype(np.float32)}
            for _ in range(count)]


def gemm_as_matmul(path: Path) -> Path:
    """The classifier's Gemm as MatMul + Add (in place): quantize_static's QOperator form of a
    Gemm is com.microsoft's QGemm, of a MatMul the standard QLinearMatMul."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or attrs.get("transA", 0) or node.input[1] not in inits or \
                attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        weight = weight.T if attrs.get("transB", 0) else weight
        name = node.input[1] + "_matmul"
        model.graph.initializer.append(numpy_helper.from_array(weight.copy(), name))
        product = node.output[0] + "_product"
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product]))
        nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(path))
    return path


def quantize_with_ort(fp32: Path, out: Path, images, fmt: str) -> Path:
    """onnxruntime's static int8: per-channel int8 weights, uint8 activations, min-max."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(images)

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(fp32), str(out), Reader(), per_channel=True,
                    quant_format=QuantFormat.QOperator if fmt == "qoperator" else QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=QUANTIZED_OPS)
    return out


def compile_accel(accel, model, artifact: Path, target: str, **kwargs):
    """Compile with accel (cache off: the timing is for this build), load, report its size."""
    start = time.perf_counter()
    accel.compile(str(model), target, output=str(artifact), cache="off", **kwargs)
    module = accel.load(str(artifact))
    log(f"  accel: {artifact.name} compiled and loaded in {time.perf_counter() - start:.1f} s")
    return module


def library_bytes(artifact: Path) -> int:
    """The bytes of the compiled library inside the artifact (weights and code)."""
    from accel.artifact import open_artifact

    return len(open_artifact(artifact).library_bytes())


def int8_module(accel, name: str, files: dict[str, Path], workdir: Path, args, images):
    """accel's int8 module and artifact path, from the source ``--int8-from`` names."""
    artifact = workdir / f"{name}-int8.accel"
    if args.int8_from != "accel":
        return compile_accel(accel, files[args.int8_from], artifact, args.target), artifact
    from accel.options import CompileOptions
    from accel.quantize import QuantizeOptions

    options = CompileOptions(quantize=QuantizeOptions())
    return compile_accel(accel, files["fp32"], artifact, args.target, options=options,
                         calibration=images), artifact


def make_runners(name: str, workdir: Path, args, accel, images):
    """Export, quantize and compile one model; its runners and artifact sizes."""
    fp32 = gemm_as_matmul(export_onnx(name, workdir / f"{name}.onnx", keep_batchnorm=False))
    files = {"fp32": fp32}
    for fmt in ("qoperator", "qdq"):
        files[fmt] = quantize_with_ort(fp32, workdir / f"{name}-{fmt}.onnx", images, fmt)
    log(f"{name}: exported and quantized by onnxruntime")
    fp32_art = workdir / f"{name}-fp32.accel"
    fp32_mod = compile_accel(accel, fp32, fp32_art, args.target)
    int8_mod, int8_art = int8_module(accel, name, files, workdir, args, images)
    feeds = calibration_images(args.calibration + 1)[-1]  # an image not used to calibrate
    sessions = {fmt: ort_session(files[fmt]) for fmt in ("fp32", "qoperator", "qdq")}
    runners = {
        BASELINE: lambda: fp32_mod(**feeds),
        f"accel int8 ({args.int8_from})": lambda: int8_mod(**feeds),
        "onnxruntime fp32": lambda: sessions["fp32"].run(None, feeds),
        "onnxruntime int8 (qoperator)": lambda: sessions["qoperator"].run(None, feeds),
        "onnxruntime int8 (qdq)": lambda: sessions["qdq"].run(None, feeds),
    }
    sizes = {BASELINE: library_bytes(fp32_art),
             f"accel int8 ({args.int8_from})": library_bytes(int8_art)}
    return runners, sizes


def agreement(runners) -> dict[str, dict[str, str]]:
    """Each runner's output against onnxruntime's int8 model of the same format and against
    float32: max abs difference and whether the top-1 class agrees."""
    outputs = {name: np.asarray(run()[0], np.float64) for name, run in runners.items()}
    reference = {"fp32": outputs["onnxruntime fp32"],
                 "qoperator": outputs["onnxruntime int8 (qoperator)"],
                 "qdq": outputs["onnxruntime int8 (qdq)"]}
    table = {}
    for name, out in outputs.items():
        cells = {}
        for ref_name, ref in reference.items():
            diff = float(np.max(np.abs(out - ref)))
            same = int(np.argmax(out)) == int(np.argmax(ref))
            cells[f"vs ort {ref_name}"] = f"{diff:.3g}{'' if same else ' (top-1 differs)'}"
        table[name] = cells
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the timing and size tables."""
    args = parse_args(argv)
    import accel

    images = calibration_images(args.calibration)
    results: dict[str, dict[str, Timing]] = {}
    extra: dict[str, dict[str, dict[str, str]]] = {}
    size_rows = []
    with tempfile.TemporaryDirectory(prefix="accel-bench-quant-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            try:
                runners, sizes = make_runners(name, workdir, args, accel, images)
            except accel.AccelError as exc:  # e.g. --int8-from accel before it has landed
                raise SystemExit(f"error: accel failed on {name}: {exc}") from None
            extra[name] = agreement(runners)
            results[name] = time_interleaved(runners, rounds=args.rounds, calls=args.calls,
                                             warmup=args.warmup)
            fp32_bytes, int8_bytes = sizes.values()
            size_rows.append(f"| {name} | {fp32_bytes / 1e6:.2f} | {int8_bytes / 1e6:.2f} | "
                             f"{fp32_bytes / int8_bytes:.2f} |")
            log("  timed " + ", ".join(f"{r} {t.median_ms:.2f} ms"
                                       for r, t in results[name].items()))
    print(render_table(results, baseline=BASELINE, extra=extra))
    print("\n| model | accel fp32 library MB | accel int8 library MB | fp32 / int8 |")
    print("| --- | --- | --- | --- |")
    print("\n".join(size_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

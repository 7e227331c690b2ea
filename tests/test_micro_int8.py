"""Int8 C packages: onnxruntime-quantized models (QOperator and QDQ) on the host and Cortex-M."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import accel
from accel.micro import harness

from . import models
from .conftest import require_tool

#: The int8 packages and onnxruntime agree to float32 rounding of the final softmax: every
#: requantize rounds the same way (exact int32 sums, float32 scale, half to even).
ATOL = 1e-5
FORMATS = ("QOperator", "QDQ")


def _gemm_as_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Gemm(x, W, b, transB=1) as MatMul + Add: onnxruntime quantizes MatMul to the standard
    QLinearMatMul (Gemm would become com.microsoft's QGemm)."""
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type != "Gemm":
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w.T),
                                                              node.input[1]))
        nodes += [helper.make_node("MatMul", node.input[:2], [node.output[0] + "_mm"],
                                   name=node.name + "_mm"),
                  helper.make_node("Add", [node.output[0] + "_mm", node.input[2]], node.output,
                                   name=node.name + "_bias")]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def quantized(model: onnx.ModelProto, fmt: str, work) -> onnx.ModelProto:
    """``model`` quantized by onnxruntime (static, calibrated on random inputs; int8, or uint8
    activations and weights for ``QOperator-u8``): BatchNorm folded by its pre-processing, then
    Conv, MatMul and Relu."""
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.sets = iter([models.feeds_for(model, seed=s) for s in range(10, 18)])

        def get_next(self):
            return next(self.sets, None)

    onnx.save(model, work / "float.onnx")
    quant_pre_process(str(work / "float.onnx"), str(work / "pre.onnx"))
    onnx.save(_gemm_as_matmul(onnx.load(work / "pre.onnx")), work / "pre.onnx")
    kind = q.QuantType.QUInt8 if fmt.endswith("-u8") else q.QuantType.QInt8
    q.quantize_static(str(work / "pre.onnx"), str(work / f"{fmt}.onnx"), Reader(),
                      quant_format=getattr(q.QuantFormat, fmt.removesuffix("-u8")),
                      activation_type=kind, weight_type=kind,
                      op_types_to_quantize=["Conv", "MatMul", "Relu"])
    return onnx.load(work / f"{fmt}.onnx")


@pytest.fixture(scope="module")
def int8_models(tmp_path_factory):
    """(name, format) -> the quantized ONNX model, each quantized once per module."""
    pytest.importorskip("onnxruntime")
    done = {}

    def get(name: str, fmt: str):
        if (name, fmt) not in done:
            work = tmp_path_factory.mktemp(f"q_{name}_{fmt}")
            done[name, fmt] = quantized(getattr(models, name)(), fmt, work)
        return done[name, fmt]

    return get


@pytest.fixture(scope="module")
def int8_package(int8_models, tmp_path_factory):
    """(name, format, target) -> CPackage, each compiled once per module."""
    done = {}

    def get(name: str, fmt: str, target: str):
        if (name, fmt, target) not in done:
            out = tmp_path_factory.mktemp("pkg") / f"{name}_{fmt}_{target}"
            done[name, fmt, target] = accel.compile(int8_models(name, fmt), target, output=out)
        return done[name, fmt, target]

    return get


def _integer_convs_and_matmuls(model) -> int:
    """How many convs and matmuls take 8-bit inputs after accel's cleanup phase."""
    from accel.model import load_model
    from accel.quantize.host import prepare

    text = prepare(load_model(model).mod).script(show_meta=False)
    return text.count('out_dtype="int32"')


def _check(package, model, board, work):
    feeds = models.feeds_for(model)
    expected = models.onnxruntime_outputs(model, feeds)
    main_c = harness.check_main(package, inputs=list(feeds.values()), expected=expected,
                                rtol=0.0, atol=ATOL)
    result = harness.run_test(harness.build_test(package, main_c, work=work, board=board),
                              board=board)
    assert result.returncode == 0, result.output
    assert result.max_abs_diff is not None and result.max_abs_diff <= ATOL
    return result


def _ops(model) -> set[str]:
    return {n.op_type for n in model.graph.node}


@pytest.mark.e2e
@pytest.mark.parametrize("name, fmt", [("ds_cnn_kws", "QOperator"), ("ds_cnn_kws", "QDQ"),
                                       ("conv_block", "QOperator"),
                                       ("conv_block", "QOperator-u8")])
def test_int8_host_build_matches_onnxruntime(int8_models, int8_package, name, fmt, tmp_path):
    require_tool("gcc")
    require_tool("make")
    model = int8_models(name, fmt)
    wanted = {"QLinearConv"} if fmt.startswith("QOperator") else {"QuantizeLinear",
                                                                   "DequantizeLinear"}
    assert wanted <= _ops(model)
    pkg = int8_package(name, fmt, "c-host")
    assert "double" not in (pkg.path / "kernels.c").read_text()  # requantize in float32
    rewrites = pkg.manifest["report"]["micro_rewrites"]
    assert rewrites["float64_kernels"] == []
    if fmt == "QDQ":  # LowerQDQToInteger (cleanup phase) made all 10 integer before these
        assert rewrites["qdq_integer_ops"] == 0 and rewrites["raw_int_input_ops"] == 0
        assert _integer_convs_and_matmuls(model) == 10  # 9 convs and the classifier's matmul
    else:  # the QLinearConv/QLinearMatMul converters already compute on the 8-bit values
        assert rewrites["raw_int_input_ops"] == 0
        assert _integer_convs_and_matmuls(model) > 0
    _check(pkg, model, None, tmp_path)


@pytest.mark.emulated
@pytest.mark.parametrize("target, fmt", [("cortex-m7", "QOperator"), ("cortex-m7", "QDQ"),
                                         ("cortex-m4", "QOperator")])
def test_int8_ds_cnn_on_cortex_m_matches_onnxruntime_under_qemu(int8_models, int8_package,
                                                                target, fmt, tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    require_tool("make")
    result = _check(int8_package("ds_cnn_kws", fmt, target), int8_models("ds_cnn_kws", fmt),
                    target, tmp_path)
    assert result.instructions and result.instructions > 0
    print(f"{target} int8 ds_cnn_kws ({fmt}): {result.instructions} instructions "
          f"(QEMU -icount), max |diff| {result.max_abs_diff:.2e}")


@pytest.mark.emulated
def test_int8_ds_cnn_weights_are_a_quarter_and_the_arena_smaller(int8_package, tmp_path):
    require_tool("arm-none-eabi-gcc")
    flt = accel.compile(models.ds_cnn_kws(), "cortex-m7", output=tmp_path / "float").manifest
    rows = {"float32": flt, **{f"int8 {fmt}": int8_package("ds_cnn_kws", fmt, "cortex-m7")
                               .manifest for fmt in FORMATS}}
    for label, m in rows.items():
        s = m["sizes"]
        print(f"{label:14} kernels {s['parts']['kernels']['flash']:>7} weights "
              f"{s['parts']['weights']['flash']:>7} runtime {s['parts']['runtime']['flash']:>6} "
              f"flash {s['flash']:>7} arena {s['arena']:>7} ram {s['ram']:>7}")
    for fmt in FORMATS:
        int8 = rows[f"int8 {fmt}"]
        weights = int8["sizes"]["parts"]["weights"]["flash"]
        assert weights * 3 < flt["sizes"]["parts"]["weights"]["flash"]
        assert int8["sizes"]["arena"] < flt["sizes"]["arena"]
        assert int8["sizes"]["arena"] == int8["arena"]["peak_live"]
        assert int8["sizes"]["parts"]["runtime"]["flash"] < 2048


# --- passes: float64 demotion and weight narrowing --------------------------------------------

@pytest.mark.passes
def test_integer_constants_narrow_to_the_smallest_exact_type():
    from accel.micro.narrow_weights import narrowest

    assert narrowest(np.array([-128, 127], np.int32)).dtype == np.int8
    assert narrowest(np.array([-255, 255], np.int32)).dtype == np.int16
    assert narrowest(np.array([1 << 20], np.int32)) is None
    assert narrowest(np.array([1, 2], np.int8)) is None
    assert narrowest(np.array([0.5], np.float32)) is None


def _scaled(dtype: str):
    """main(x: dtype[4]) = x * 0.1 computed in float64."""
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4,), dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            wide = bb.emit(relax.op.astype(x, "float64"))
            y = bb.emit(relax.op.multiply(wide, relax.const(0.1, "float64")))
            out = bb.emit_output(relax.op.astype(y, dtype))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.passes
def test_float64_inside_a_float32_model_is_demoted_but_a_float64_model_is_kept():
    from accel.micro.single_precision import DemoteFloat64

    demote = DemoteFloat64()
    assert "float64" not in demote(_scaled("float32")).script()
    assert demote.demoted == 2  # the cast and the constant
    assert "float64" in DemoteFloat64()(_scaled("float64")).script()


def qlinear_int8_io() -> onnx.ModelProto:
    """int8 in, int8 out: a padded QLinearConv (per-channel weight scales, non-zero input
    zero point, int32 bias) then a QLinearMatMul with int8 weights."""
    from onnx import TensorProto

    rng = np.random.default_rng(3)
    c = [numpy_helper.from_array(np.array(v, dtype=t), n) for n, v, t in (
        ("sx", 0.05, np.float32), ("zx", -3, np.int8), ("sw", rng.uniform(0.01, 0.03, 4),
                                                        np.float32),
        ("zw", np.zeros(4), np.int8), ("sy", 0.2, np.float32), ("zy", 5, np.int8),
        ("sb", 0.02, np.float32), ("zb", -2, np.int8), ("sz", 0.1, np.float32),
        ("zz", 1, np.int8))]
    c += [numpy_helper.from_array(rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8), "w"),
          numpy_helper.from_array(rng.integers(-500, 500, 4).astype(np.int32), "bias"),
          numpy_helper.from_array(rng.integers(-127, 128, (6, 5)).astype(np.int8), "b")]
    nodes = [helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy",
                                              "bias"], ["y"], pads=[1, 1, 1, 1], name="qconv"),
             helper.make_node("QLinearMatMul", ["y", "sy", "zy", "b", "sb", "zb", "sz", "zz"],
                              ["z"], name="qmatmul")]
    return models._model(nodes, [models._vi("x", [1, 2, 6, 6], TensorProto.INT8)],
                         [models._vi("z", [1, 4, 6, 5], TensorProto.INT8)], c)


@pytest.mark.e2e
def test_int8_inputs_and_outputs_match_onnxruntime_exactly(tmp_path):
    pytest.importorskip("onnxruntime")
    require_tool("gcc")
    require_tool("make")
    model = qlinear_int8_io()
    pkg = accel.compile(model, "c-host", output=tmp_path / "model_c")
    assert "int accel_model_run(const int8_t *in_x, int8_t *out_z);" in \
        (pkg.path / "model.h").read_text()
    feeds = {"x": np.random.default_rng(4).integers(-128, 128, (1, 2, 6, 6)).astype(np.int8)}
    expected = models.onnxruntime_outputs(model, feeds)
    main_c = harness.check_main(pkg, inputs=[feeds["x"]], expected=expected, rtol=0, atol=0)
    result = harness.run_test(harness.build_test(pkg, main_c, work=tmp_path / "work"))
    assert result.returncode == 0, result.output
    assert result.max_abs_diff == 0


@pytest.mark.passes
def test_int8_weights_and_scales_are_recovered_from_dequantized_floats():
    from accel.micro.qdq_integer import recover_int8

    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (4, 3)).astype(np.int8)
    q[:, 0] = 127  # each channel reaches the range, as onnxruntime's symmetric scales do
    scales = np.array([0.5, 0.01, 0.2, 0.03], np.float32)
    values, found = recover_int8(q.astype(np.float32) * scales[:, None], 0)
    assert np.array_equal(values, q) and np.allclose(found, scales, rtol=1e-6)
    assert recover_int8(rng.standard_normal((4, 3)).astype(np.float32), 0) is None

"""Static int8 quantization: observers, accuracy on digits, int8 weights, keep-float, sensitivity,
errors, onnxruntime QDQ models lowered to integer compute, the CLI and other targets."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import accel
from accel.errors import InputError, ModelFileError, UsageError
from accel.model import load_model
from accel.options import CompileOptions
from accel.quantize import QuantizeOptions
from accel.quantize.host import prepare
from accel.quantize.int8 import quantize_int8, quantize_weight
from accel.quantize.observers import Observer

from . import quant_models as qm
from .conftest import require_tool

RNG = np.random.default_rng(0)


def _int8(observer="entropy", **kw) -> CompileOptions:
    return CompileOptions(quantize=QuantizeOptions(observer=observer, **kw))


def _first(result):
    return result[0] if isinstance(result, list | tuple) else result


def _integer_ops(mod) -> list[tuple[str, str, str]]:
    """(op, input dtype, out dtype) of every conv/matmul after the pipeline's early phases."""
    import tvm
    from tvm import relax

    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and \
                expr.op.name in ("relax.nn.conv1d", "relax.nn.conv2d", "relax.matmul"):
            found.append((expr.op.name.rsplit(".", 1)[1], str(expr.args[0].ty.dtype),
                          str(expr.ty.dtype)))

    relax.analysis.post_order_visit(prepare(mod)["main"], visit)
    return found


def _constant_bytes(mod) -> dict[str, int]:
    """Bytes of the weights (constants varying along two axes or more) of ``mod``, by dtype."""
    import tvm
    from tvm import relax

    sizes: dict[str, int] = {}

    def visit(expr):
        if isinstance(expr, tvm.ir.GenericConst) and \
                sum(int(d) > 1 for d in expr.value.shape) >= 2:
            value = expr.value.numpy()
            sizes[str(value.dtype)] = sizes.get(str(value.dtype), 0) + value.nbytes

    relax.analysis.post_order_visit(prepare(mod)["main"], visit)
    return sizes


@pytest.fixture(scope="module")
def digits():
    """The trained digits CNN and its fp32 test accuracy through accel."""
    model = qm.digits_cnn()
    fp32 = accel.load(accel.compile(model, cache="off").path)
    return model, qm.accuracy(lambda x: _first(fp32(x)))


# -- unit ---------------------------------------------------------------------------------
@pytest.mark.unit
def test_observers_clip_an_outlier_that_minmax_keeps():
    values = RNG.standard_normal(200_000).astype(np.float32)
    values[0] = 50.0
    thresholds = {}
    for kind in ("minmax", "percentile", "entropy"):
        obs = Observer(kind, percentile=99.9)
        for chunk in np.array_split(values, 7):  # the histogram range grows batch by batch
            obs.update(chunk)
        thresholds[kind] = obs.threshold()
    assert thresholds["minmax"] == pytest.approx(50.0)
    want = np.percentile(np.abs(values), 99.9)
    assert abs(thresholds["percentile"] - want) < 3 * 50.0 / 2048  # a few histogram bins
    assert 2.0 < thresholds["entropy"] < 6.0  # a Gaussian's KL threshold is a few sigmas


@pytest.mark.unit
def test_entropy_threshold_ignores_a_relu_spike_of_zeros():
    obs = Observer("entropy")
    obs.update(np.maximum(RNG.standard_normal(200_000), 0).astype(np.float32))
    # half the values are exact zeros; counting them pulled the threshold down to 1.8 sigma
    # (clipping 8% of the positive values), which cost MobileNetV2 78% output error
    assert 3.0 < obs.threshold() <= obs.max


@pytest.mark.unit
def test_observer_marks_non_negative_tensors_unsigned():
    obs = Observer("minmax")
    obs.update(np.abs(RNG.standard_normal(100)))
    assert obs.unsigned
    obs.update(np.array([-0.5]))
    assert not obs.unsigned


@pytest.mark.unit
def test_weights_are_symmetric_int8_per_output_channel():
    weight = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32) * np.array(
        [0.01, 1.0, 10.0, 100.0], np.float32).reshape(4, 1, 1, 1)
    q, scale = quantize_weight(weight, 0)
    assert q.dtype == np.int8 and scale.shape == (4,)
    np.testing.assert_allclose(scale, np.abs(weight).reshape(4, -1).max(1) / 127, rtol=1e-6)
    back = q.astype(np.float32) * scale.reshape(4, 1, 1, 1)
    assert np.all(np.abs(back - weight) <= scale.reshape(4, 1, 1, 1) / 2 + 1e-6)


# -- accuracy and what the artifact holds ----------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("observer", ["minmax", "percentile", "entropy"])
def test_int8_digits_accuracy_is_within_one_point_of_fp32(digits, observer):
    model, fp32_accuracy = digits
    artifact = accel.compile(model, cache="off", options=_int8(observer),
                             calibration=qm.calibration_sets())
    int8 = accel.load(artifact.path)
    int8_accuracy = qm.accuracy(lambda x: _first(int8(x)))
    assert int8_accuracy >= fp32_accuracy - 0.01, (observer, int8_accuracy, fp32_accuracy)
    report = artifact.manifest["report"]["quantization"]
    assert [s["name"] for s in report["sites"]] == ["conv2d_0", "conv2d_1", "matmul_2"]
    assert [s["layer"] for s in report["sites"]] == ["conv1", "conv2", "fc"]  # ONNX nodes
    assert all(s["quantized"] for s in report["sites"])
    assert report["sites"][0]["inputs"][0]["dtype"] == "uint8"  # images are never negative


@pytest.mark.e2e
def test_quantized_weights_are_int8_constants_four_times_smaller(digits):
    model, _ = digits
    imported = load_model(model)
    quantized = quantize_int8(imported, None, QuantizeOptions(observer="minmax"),
                              qm.calibration_sets(2))
    before, after = _constant_bytes(imported.mod), _constant_bytes(quantized.mod)
    assert set(after) == {"int8"}, after
    assert after["int8"] * 4 == before["float32"]
    ops = _integer_ops(quantized.mod)
    assert ops == [("conv2d", "uint8", "int32"), ("conv2d", "uint8", "int32"),
                   ("matmul", "uint8", "int32")]


@pytest.mark.e2e
def test_keep_float_leaves_the_named_layer_in_float(digits):
    model, _ = digits
    quantized = quantize_int8(load_model(model), None,
                              QuantizeOptions(observer="minmax", keep_float=("matmul_2",)),
                              qm.calibration_sets(2))
    assert _integer_ops(quantized.mod) == [("conv2d", "uint8", "int32"),
                                           ("conv2d", "uint8", "int32"),
                                           ("matmul", "float32", "float32")]
    site = quantized.quantization["sites"][2]
    assert not site["quantized"] and site["kept_float"] == "keep_float option"


@pytest.mark.e2e
def test_keep_float_takes_onnx_node_names(digits):
    model, _ = digits
    quantized = quantize_int8(load_model(model), None,
                              QuantizeOptions(observer="minmax", keep_float=("conv1",)),
                              qm.calibration_sets(1))
    assert [s["quantized"] for s in quantized.quantization["sites"]] == [False, True, True]
    assert _integer_ops(quantized.mod)[0] == ("conv2d", "float32", "float32")


@pytest.mark.e2e
def test_sensitivity_keeps_layers_whose_error_exceeds_the_bound(digits):
    model, _ = digits
    imported = load_model(model)
    sets = qm.calibration_sets(2)
    measured = quantize_int8(imported, None, QuantizeOptions(observer="minmax", sensitivity=10.0),
                             sets).quantization
    errors = {s["name"]: s["output_error"] for s in measured["sites"]}
    assert all(0 < e < 0.5 for e in errors.values()) and measured["kept_float"] == 0
    bound = sorted(errors.values())[1]  # only the most sensitive site exceeds it
    strict = quantize_int8(imported, None, QuantizeOptions(observer="minmax", sensitivity=bound),
                           sets).quantization
    kept = {s["name"] for s in strict["sites"] if not s["quantized"]}
    assert kept == {n for n, e in errors.items() if e > bound} and len(kept) == 1
    assert all(s["kept_float"].startswith("sensitivity") for s in strict["sites"]
               if s["name"] in kept)


@pytest.mark.e2e
def test_int8_covers_depthwise_conv1d_and_a_matmul_of_two_activations():
    import onnxruntime as ort

    model = qm.depthwise_conv1d_attention()
    sets = [{"x": RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)} for _ in range(8)]
    quantized = quantize_int8(load_model(model), None, QuantizeOptions(observer="minmax"), sets)
    assert [s["name"] for s in quantized.quantization["sites"]] == \
        ["conv2d_0", "conv1d_1", "matmul_2"]
    assert _integer_ops(quantized.mod) == [("conv2d", "int8", "int32"),
                                           ("conv1d", "uint8", "int32"),
                                           ("matmul", "int8", "int32")]
    compiled = accel.load(accel.compile(model, cache="off", options=_int8("minmax"),
                                        calibration=sets).path)
    session = ort.InferenceSession(model.SerializeToString())
    for inputs in sets[:3]:
        want = session.run(None, inputs)[0]
        got = _first(compiled(**inputs))
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.05


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.unit
def test_unknown_keep_float_name_lists_the_layers(digits):
    model, _ = digits
    with pytest.raises(UsageError) as info:
        quantize_int8(load_model(model), None, QuantizeOptions(keep_float=("conv2d_9",)),
                      qm.calibration_sets(1))
    assert "conv2d_9" in info.value.message
    assert "did you mean 'conv2d_1'" in info.value.hint
    assert all(n in info.value.hint for n in ("conv2d_0", "matmul_2", "conv1", "fc"))


@pytest.mark.unit
@pytest.mark.parametrize("sets, error, words", [
    ([{"images": np.zeros((50, 1, 8, 8), np.float32)}], InputError, "unknown ['images']"),
    ([{"x": np.zeros((50, 1, 9, 9), np.float32)}], InputError, "[50, 1, 9, 9]"),
    ("/nonexistent/calibration", ModelFileError, "not a folder"),
])
def test_bad_calibration_data_gives_a_clear_error(digits, sets, error, words):
    model, _ = digits
    with pytest.raises(error) as info:
        accel.compile(model, cache="off", options=_int8(), calibration=sets)
    assert words in info.value.message


@pytest.mark.unit
def test_an_empty_calibration_folder_is_refused(digits, tmp_path):
    model, _ = digits
    with pytest.raises(ModelFileError, match="no .npz files"):
        accel.compile(model, cache="off", options=_int8(), calibration=tmp_path)


# -- onnxruntime's QDQ models ----------------------------------------------------------------
@pytest.fixture(scope="module", params=["uint8", "int8-preprocessed"])
def ort_qdq(request, tmp_path_factory):
    """The digits CNN quantized by onnxruntime's quantize_static (QDQ, per-channel int8
    weights): uint8 activations with zero points; or int8 ones (zero points of -128, which
    LowerQDQToInteger pads explicitly) after onnxruntime's pre-processing (batch norm folded,
    relus absorbed into the quantization ranges)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.sets = iter(qm.calibration_sets())

        def get_next(self):
            return next(self.sets, None)

    folder = tmp_path_factory.mktemp("qdq")
    source = folder / "fp32.onnx"
    onnx.save(qm.digits_cnn(), source)
    if request.param.endswith("preprocessed"):
        quant_pre_process(str(source), str(folder / "pre.onnx"))
        source = folder / "pre.onnx"
    activations = QuantType.QUInt8 if request.param == "uint8" else QuantType.QInt8
    quantize_static(str(source), str(folder / "qdq.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=activations, weight_type=QuantType.QInt8)
    return folder / "qdq.onnx", "uint8" if request.param == "uint8" else "int8"


@pytest.mark.e2e
def test_onnxruntime_qdq_model_lowers_to_integer_ops(ort_qdq):
    path, dtype = ort_qdq
    ops = _integer_ops(load_model(path).mod)
    assert ops == [("conv2d", dtype, "int32"), ("conv2d", dtype, "int32"),
                   ("matmul", dtype, "int32")]


@pytest.mark.e2e
def test_onnxruntime_qdq_model_matches_onnxruntime(ort_qdq):
    import onnxruntime as ort

    ort_qdq, _ = ort_qdq
    session = ort.InferenceSession(str(ort_qdq))
    compiled = accel.load(accel.compile(ort_qdq, cache="off").path)
    (output_scale,) = [numpy_value(ort_qdq, n.input[1]) for n in onnx.load(ort_qdq).graph.node
                       if n.op_type == "DequantizeLinear" and n.output[0] == "logits"]
    _, (x, _) = qm.digits_split()
    for start in range(0, 150, qm.BATCH):
        batch = x[start:start + qm.BATCH]
        want = session.run(None, {"x": batch})[0]
        got = _first(compiled(batch))
        # Both compute the same integers; only float rounding of the requantize multiplier
        # (onnxruntime: float32 scale products, accel: float64, then float32) may move a value
        # by one step of the output grid, and then only on a tie.
        steps = np.abs(got - want) / float(output_scale)
        assert steps.max() <= 1.001
        assert np.mean(steps > 0.5) <= 0.01


def numpy_value(path, name):
    """An initializer of an ONNX file, as numpy."""
    from onnx import numpy_helper

    (init,) = [i for i in onnx.load(path).graph.initializer if i.name == name]
    return numpy_helper.to_array(init)


# -- CLI and other targets --------------------------------------------------------------------
@pytest.mark.e2e
def test_cli_compiles_with_a_calibration_folder(digits, tmp_path, capsys):
    from accel.cli import main

    model, _ = digits
    onnx.save(model, tmp_path / "m.onnx")
    (tmp_path / "calib").mkdir()
    for i, inputs in enumerate(qm.calibration_sets(3)):
        np.savez(tmp_path / "calib" / f"{i}.npz", **inputs)
    out = tmp_path / "m.accel"
    code = main(["compile", str(tmp_path / "m.onnx"), "--quantize", "int8", "--calibration",
                 str(tmp_path / "calib"), "--observer", "minmax", "--keep-float", "matmul_2",
                 "-o", str(out), "--cache", "off"])
    assert code == 0
    report = accel.load(out).artifact.manifest["report"]["quantization"]
    assert report["calibration_sets"] == 3 and report["kept_float"] == 1
    assert "int8: 2 of 3 layers quantized" in capsys.readouterr().out


@pytest.mark.e2e
def test_int8_c_package_computes_what_the_int8_artifact_computes(tmp_path):
    from accel.micro import harness

    model = qm.depthwise_conv1d_attention()
    sets = [{"x": RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)} for _ in range(4)]
    package = accel.compile(model, "c-host", options=_int8("minmax"), calibration=sets,
                            output=tmp_path / "model_c")
    assert "const int8_t" in (tmp_path / "model_c" / "weights.c").read_text()
    artifact = accel.load(accel.compile(model, cache="off", options=_int8("minmax"),
                                        calibration=sets).path)
    expected = _first(artifact(**sets[0]))
    main_c = harness.check_main(package, inputs=[sets[0]["x"]], expected=[expected],
                                rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    result = harness.run_test(harness.build_test(package, main_c, work=tmp_path / "work"))
    assert result.returncode == 0, result.output


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("target, tool", [("rpi4", "aarch64-linux-gnu-g++"),
                                          ("cuda-sm80", "nvcc")])
def test_int8_compiles_for_other_targets(digits, target, tool, tmp_path):
    from accel.export import ELF_MACHINES, elf_machine

    require_tool(tool)
    model, _ = digits
    artifact = accel.compile(model, target, cache="off", options=_int8("minmax"),
                             calibration=qm.calibration_sets(2), output=tmp_path / "m.accel")
    assert artifact.manifest["report"]["quantization"]["quantized"] == 3
    if target == "rpi4":
        assert elf_machine(artifact.library_bytes()) == ELF_MACHINES["aarch64"]

"""QOperator models (QLinearConv, QLinearMatMul, ConvInteger) with constant weights, imported as
integer compute: exact against onnx's reference implementation for each zero-point form, and a
model made by onnxruntime's quantize_static matching onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accel

_NP = {TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}
_RANGE = {np.uint8: (0, 256), np.int8: (-128, 128)}


def _model(node, inputs, output, inits):
    graph = helper.make_graph([node], "q", inputs, [output],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run_both(model, feeds, tmp_path):
    from onnx.reference import ReferenceEvaluator

    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    module = accel.load(accel.compile(path, "host", output=tmp_path / "m.accel").path)
    return module(**feeds)[0], expected


def _qlinearconv(*, x_type, w_type, x_zp, w_zp, cin, cout, group, pad, stride, rng):
    """A QLinearConv with initializer weights, scales, zero points and an int32 bias."""
    xt, wt = _NP[x_type], _NP[w_type]
    w = rng.integers(*_RANGE[wt], (cout, cin // group, 3, 3)).astype(wt)
    inits = {"xs": np.float32(0.02), "xz": np.array(x_zp, xt), "w": w,
             "ws": rng.uniform(0.005, 0.02, cout).astype(np.float32),
             "wz": np.array(w_zp, wt), "ys": np.float32(0.5), "yz": np.array(7, np.uint8),
             "b": rng.integers(-3000, 3000, cout).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], pads=[pad] * 4, strides=[stride] * 2, group=group)
    x = helper.make_tensor_value_info("x", x_type, [1, cin, 10, 10])
    side = (10 + 2 * pad - 3) // stride + 1
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [1, cout, side, side])
    feeds = {"x": rng.integers(*_RANGE[xt], (1, cin, 10, 10)).astype(xt)}
    return _model(node, [x], y, inits), feeds


_U8, _S8 = TensorProto.UINT8, TensorProto.INT8
_CONVS = {  # name: (x type, w type, x zero point, w zero point, cin, cout, group, pad, stride)
    "u8_x_zp0_s8_w": (_U8, _S8, 0, [0] * 32, 16, 32, 1, 1, 1),
    "u8_x_zp_padded": (_U8, _S8, 131, [0] * 32, 16, 32, 1, 1, 2),
    "s8_x_zp": (_S8, _S8, -5, [0] * 32, 16, 32, 1, 1, 1),
    "u8_w_per_channel_zp": (_U8, _U8, 9, list(range(120, 152)), 16, 32, 1, 1, 1),
    "s8_w_zp": (_U8, _S8, 3, [4] * 32, 16, 32, 1, 0, 1),
    "depthwise_zp": (_U8, _S8, 17, [0] * 16, 16, 16, 16, 1, 1),
    "grouped_w_zp": (_U8, _U8, 2, [128] * 32, 16, 32, 4, 1, 1),
}


@pytest.mark.frontends
@pytest.mark.parametrize("case", sorted(_CONVS))
def test_qlinearconv_with_constant_weights_is_exact(case, tmp_path):
    x_type, w_type, x_zp, w_zp, cin, cout, group, pad, stride = _CONVS[case]
    if len(w_zp) != cout:
        w_zp = w_zp[:cout]
    model, feeds = _qlinearconv(x_type=x_type, w_type=w_type, x_zp=x_zp, w_zp=w_zp, cin=cin,
                                cout=cout, group=group, pad=pad, stride=stride,
                                rng=np.random.default_rng(0))
    got, expected = _run_both(model, feeds, tmp_path)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.frontends
def test_convinteger_with_constant_uint8_weights_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.integers(0, 256, (32, 8, 3, 3)).astype(np.uint8)
    inits = {"w": w, "xz": np.array(100, np.uint8), "wz": np.array(77, np.uint8)}
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1] * 4)
    x = helper.make_tensor_value_info("x", _U8, [1, 8, 9, 9])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, 32, 9, 9])
    feeds = {"x": rng.integers(0, 256, (1, 8, 9, 9)).astype(np.uint8)}
    got, expected = _run_both(_model(node, [x], y, inits), feeds, tmp_path)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.frontends
@pytest.mark.parametrize("b_type,b_zp", [(_S8, 0), (_U8, "per-column")])
def test_qlinearmatmul_with_constant_weights_is_exact(b_type, b_zp, tmp_path):
    rng = np.random.default_rng(2)
    bt = _NP[b_type]
    zp = rng.integers(100, 150, 64).astype(bt) if b_zp == "per-column" else np.array(0, bt)
    inits = {"as": np.float32(0.03), "az": np.array(120, np.uint8),
             "b": rng.integers(*_RANGE[bt], (48, 64)).astype(bt),
             "bs": rng.uniform(0.01, 0.02, 64).astype(np.float32), "bz": zp,
             "ys": np.float32(0.7), "yz": np.array(128, np.uint8)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    a = helper.make_tensor_value_info("a", _U8, [5, 48])
    y = helper.make_tensor_value_info("y", _U8, [5, 64])
    feeds = {"a": rng.integers(0, 256, (5, 48)).astype(np.uint8)}
    got, expected = _run_both(_model(node, [a], y, inits), feeds, tmp_path)
    np.testing.assert_array_equal(got, expected)


def _small_cnn(path):
    """conv-relu, strided conv-relu, depthwise conv-relu6, 1x1 conv, pool, linear: fp32 ONNX."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.ReLU6(), nn.Conv2d(32, 48, 1),
        nn.Flatten(), nn.Linear(48 * 8 * 8, 32)).eval()
    torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False,
                      input_names=["input"], output_names=["output"], opset_version=13)
    return path


@pytest.mark.frontends
def test_quantize_static_qoperator_model_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    rng = np.random.default_rng(0)
    images = [{"input": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}
              for _ in range(5)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(images[:4])

        def get_next(self):
            return next(self.items, None)

    quantized = tmp_path / "q.onnx"
    quantize_static(str(_small_cnn(tmp_path / "f.onnx")), str(quantized), Reader(),
                    quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    # not Gemm: its QOperator form is com.microsoft's QGemm
                    op_types_to_quantize=["Conv", "MatMul", "Relu", "Clip"])
    ops = {n.op_type for n in onnx.load(quantized).graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops
    expected = ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"]).run(
        None, images[4])[0]
    module = accel.load(accel.compile(quantized, "host", output=tmp_path / "q.accel").path)
    got = module(**images[4])[0]
    # the integer graph agrees exactly; what is left is the float Gemm's summation order
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3 * np.abs(expected).max())

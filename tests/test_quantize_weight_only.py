"""--quantize int8-weight / int4-weight end to end: numerics against onnxruntime and torch,
weight bytes in the artifact, CUDA scheduling, and the refusals.

Error bounds. A weight rounded to the step ``s = max|w| / qmax`` of its group is off by at most
s/2, uniformly, so its RMS error is ``s / sqrt(12)``. For Gaussian weights the maximum of a group
of 128 is about 2.6 sigma, so one layer's relative output error is about 2.6 / (qmax sqrt(12)):
0.6% for int8 (qmax 127) and 11% for int4 (qmax 7), adding in quadrature over stacked layers.
The bounds below are those estimates with a margin of about 2x for the models' depth. The kernel
itself is checked tightly: against onnxruntime running the same model on the dequantized weights.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accel
from accel.errors import UsageError
from accel.options import CompileOptions
from accel.quantize import QuantizeOptions
from accel.quantize.packing import dequantize, quantize_groupwise

from .models import onnxruntime_outputs

pytestmark = pytest.mark.e2e

BOUND = {"int8-weight": 0.015, "int4-weight": 0.25}  # relative L2 error vs float32, 2 layers
#: The encoder layer measured 0.13% / 2.3%: the residual stream carries the unquantized input,
#: and the error is relative to LayerNorm outputs of O(1).
ENCODER_BOUND = {"int8-weight": 0.005, "int4-weight": 0.08}
BITS = {"int8-weight": 8, "int4-weight": 4}
HIDDEN, INTER = 512, 1024


def mlp_gemm(hidden=HIDDEN, inter=INTER, batch=1) -> onnx.ModelProto:
    """Gemm (transB, as torch exports Linear) + Relu + MatMul: 3 MiB of float32 weights."""
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((inter, hidden)) / np.sqrt(hidden)).astype(np.float32)
    w2 = (rng.standard_normal((inter, hidden)) / np.sqrt(inter)).astype(np.float32)
    b1 = (0.1 * rng.standard_normal(inter)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, hidden])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def dequantized_twin(model: onnx.ModelProto, bits: int, group_size: int) -> onnx.ModelProto:
    """The model with each matmul weight replaced by its quantize-dequantize round trip."""
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    transposed = {n.input[1] for n in twin.graph.node if n.op_type == "Gemm"}
    for init in twin.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim != 2:
            continue
        kn = w.T if init.name in transposed else w
        packed, scales = quantize_groupwise(kn, bits, group_size)
        deq = dequantize(packed, scales, bits, group_size, kn.shape[0])
        init.CopyFrom(numpy_helper.from_array(deq.T if init.name in transposed else deq,
                                              init.name))
    return twin


def _compile(model, mode, tmp_path, target="host", group_size=128):
    options = CompileOptions(quantize=QuantizeOptions(mode=mode, group_size=group_size)
                             if mode else None)
    return accel.compile(model, target, options=options, cache="off",
                         output=tmp_path / f"{mode or 'fp32'}-{target}.accel")


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def mlp_artifacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wq")
    model = mlp_gemm()
    return model, {mode: _compile(model, mode, folder)
                   for mode in (None, "int8-weight", "int4-weight")}


@pytest.mark.parametrize("mode", ["int8-weight", "int4-weight"])
def test_weight_only_mlp_matches_onnxruntime_on_dequantized_weights_and_fp32_within_bound(
        mode, mlp_artifacts):
    model, artifacts = mlp_artifacts
    x = np.random.default_rng(1).standard_normal((1, HIDDEN)).astype(np.float32)
    got = accel.load(artifacts[mode].path)(x=x)[0]
    exact = onnxruntime_outputs(dequantized_twin(model, BITS[mode], 128), {"x": x})[0]
    np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-4)
    fp32 = onnxruntime_outputs(model, {"x": x})[0]
    assert _rel(got, fp32) < BOUND[mode]
    assert _rel(got, fp32) > 1e-5  # the weights really were quantized


def test_weight_only_artifacts_hold_4x_and_8x_fewer_weight_bytes(mlp_artifacts):
    _, artifacts = mlp_artifacts
    for mode, storage, per_weight in (("int8-weight", "int8", 1), ("int4-weight", "uint8", 2)):
        constants = artifacts[mode].manifest["report"]["quantize"]["constant_bytes"]
        assert constants[storage] == 2 * HIDDEN * INTER // per_weight
    size = {mode: a.path.stat().st_size for mode, a in artifacts.items()}
    weights = 2 * HIDDEN * INTER * 4
    assert size[None] > weights  # the float32 weights are in the fp32 artifact
    assert size[None] / size["int8-weight"] > 3.5  # 1 byte + 4/128 of scales per weight
    assert size[None] / size["int4-weight"] > 6.5  # 0.5 byte + 4/128 of scales per weight


def test_weight_only_kernels_get_the_default_cpu_schedule(mlp_artifacts):
    _, artifacts = mlp_artifacts
    for artifact in artifacts.values():
        phase = next(p for p in artifact.manifest["report"]["phases"] if p["name"] == "schedule")
        assert phase["kernels"] == phase["scheduled"] > 0


def test_quantize_weights_stores_packed_integers_and_group_scales():
    from accel.model import load_model
    from accel.quantize.weight_only import quantize_weights, quantized_matmuls, weight_bytes
    from accel.target import get_target

    model = load_model(mlp_gemm())
    for mode, storage, per_weight in (("int8-weight", "int8", 1.0), ("int4-weight", "uint8", .5)):
        options = QuantizeOptions(mode=mode, group_size=64)
        mod = quantize_weights(model, get_target("host"), options).mod
        assert quantized_matmuls(mod, BITS[mode]) == 2
        totals = weight_bytes(mod)
        assert totals[storage] == 2 * HIDDEN * INTER * per_weight
        # the scales (one per 64 input channels and output) and the Gemm bias
        assert totals["float32"] == (HIDDEN // 64 * INTER + INTER // 64 * HIDDEN) * 4 + INTER * 4


def _encoder_layer():
    import torch
    from torch import nn

    class Layer(nn.Module):
        """Post-LayerNorm transformer layer (attention, GELU FFN), hidden 128, 4 heads."""

        def __init__(self, hidden=128, heads=4, seq=16):
            super().__init__()
            self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
            self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
            self.ffn = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(),
                                     nn.Linear(4 * hidden, hidden))

        def forward(self, x):
            x = self.norm1(x + self.attn(x, x, x, need_weights=False)[0])
            return self.norm2(x + self.ffn(x))

    torch.manual_seed(0)
    return Layer().eval(), (torch.randn(1, 16, 128),)


@pytest.mark.frontends
@pytest.mark.parametrize("mode", ["int8-weight", "int4-weight"])
def test_weight_only_torch_encoder_layer_matches_torch_within_bound(mode, tmp_path):
    import torch

    module, inputs = _encoder_layer()
    with torch.no_grad():
        expected = module(*inputs).numpy()
    options = CompileOptions(quantize=QuantizeOptions(mode=mode, group_size=64))
    artifact = accel.compile(module, "host", example_inputs=inputs, options=options,
                             cache="off", output=tmp_path / "enc.accel")
    got = accel.load(artifact.path)(inputs[0].numpy())[0]
    assert 1e-5 < _rel(got, expected) < ENCODER_BOUND[mode]


def test_weight_only_refuses_a_model_without_constant_matmul_weights(tmp_path):
    from .models import conv_block

    model = conv_block()
    del model.graph.node[-1]  # drop the Gemm: convolutions only
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("f", TensorProto.FLOAT,
                                                                 [1, 8]))
    with pytest.raises(UsageError, match="no matmul with a constant 2-D float32 weight"):
        _compile(model, "int8-weight", tmp_path)


@pytest.mark.parametrize("group_size", [0, 7, -4])
def test_group_size_must_be_a_positive_even_number(group_size):
    with pytest.raises(UsageError, match=f"group size {group_size}"):
        QuantizeOptions(mode="int4-weight", group_size=group_size)


@pytest.mark.parametrize("hidden", [96, 95])  # 95: an odd input count for int4's byte pairs
def test_group_size_not_dividing_the_input_channels_gets_a_shorter_last_group(hidden, tmp_path):
    model = mlp_gemm(hidden=hidden, inter=160)  # group 64: 96 = 64 + 32, 160 = 2 x 64 + 32
    x = np.random.default_rng(2).standard_normal((1, hidden)).astype(np.float32)
    got = accel.load(_compile(model, "int4-weight", tmp_path, group_size=64).path)(x=x)[0]
    exact = onnxruntime_outputs(dequantized_twin(model, 4, 64), {"x": x})[0]
    np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-4)


def test_cli_compiles_int4_weight_and_rejects_an_odd_group_size(tmp_path, capsys):
    from accel.cli import main

    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_gemm(hidden=64, inter=128), path)
    out = tmp_path / "mlp.accel"
    assert main(["compile", str(path), "-t", "host", "--quantize", "int4-weight",
                 "--group-size", "32", "-o", str(out)]) == 0
    x = np.random.default_rng(3).standard_normal((1, 64)).astype(np.float32)
    exact = onnxruntime_outputs(dequantized_twin(onnx.load(path), 4, 32), {"x": x})[0]
    np.testing.assert_allclose(accel.load(out)(x=x)[0], exact, rtol=1e-4, atol=1e-4)
    assert main(["compile", str(path), "-t", "host", "--quantize", "int4-weight",
                 "--group-size", "33", "-o", str(tmp_path / "bad.accel")]) == 2
    assert "group size 33" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["int8-weight", "int4-weight"])
@pytest.mark.parametrize("batch", [1, 128])  # GEMV (DLight's GEMV rule), GEMM (its Matmul rule)
def test_weight_only_cuda_build_schedules_the_dequantizing_kernels(mode, batch, tmp_path):
    import shutil

    from accel import cuda

    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found on PATH: CUDA codegen needs the CUDA toolkit")
    cuda.ensure_cuda_codegen(tmp_path / "cuda-cache")
    artifact = _compile(mlp_gemm(batch=batch), mode, tmp_path, target="cuda-sm80")
    report = artifact.manifest["report"]
    phase = next(p for p in report["phases"] if p["name"] == "schedule")
    assert phase["kernels"] == phase["scheduled"]  # GPU kernels need a thread binding
    kernels = [k for k in report["cuda_kernels"] if f"int{BITS[mode]}_matmul" in k["name"]]
    assert len(kernels) == 2 and all(k["registers"] > 0 for k in kernels)
    # Shared memory as float32's matmuls get: DLight's GEMV rule (a cross-thread reduction,
    # 1 KiB) or its Matmul rule (shared-memory tiles, 6.75 KiB) took them, not the plain
    # reduction (132 bytes) that a decode inside the reduction got at batch 128.
    assert all(k["shared_bytes"] >= (1024 if batch == 1 else 4096) for k in kernels)


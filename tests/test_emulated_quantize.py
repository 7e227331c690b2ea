"""fp16 and weight-only artifacts for the Raspberry Pi 5 (Cortex-A76: native float16, NEON) run
on the emulated AArch64 device and match onnxruntime within each mode's bound."""

from __future__ import annotations

import numpy as np
import pytest

import accel
from accel.options import CompileOptions
from accel.quantize import QuantizeOptions
from accel.remote import load_remote

from . import models
from .test_emulated_aarch64 import farm  # noqa: F401 (the session's emulated RPC server)
from .test_quantize_fp16 import FP16_BOUND
from .test_quantize_weight_only import BITS, dequantized_twin, mlp_gemm

pytestmark = pytest.mark.emulated


def _run(farm, model, mode, tmp_path):  # noqa: F811
    options = CompileOptions(quantize=QuantizeOptions(mode=mode, group_size=64))
    artifact = accel.compile(model, "rpi5", options=options, cache="off",
                             output=tmp_path / f"{mode}.accel")
    feeds = models.feeds_for(model)
    return load_remote(artifact.path, farm)(**feeds), feeds


def test_fp16_rpi5_artifact_matches_onnxruntime_within_fp16_tolerance(farm, tmp_path):  # noqa: F811
    model = models.conv_block()
    got, feeds = _run(farm, model, "fp16", tmp_path)
    (want,) = models.onnxruntime_outputs(model, feeds)
    assert 1e-6 < np.linalg.norm(got[0] - want) / np.linalg.norm(want) < FP16_BOUND


@pytest.mark.parametrize("mode", ["int8-weight", "int4-weight"])
def test_weight_only_rpi5_artifact_matches_onnxruntime_on_dequantized_weights(
        farm, mode, tmp_path):  # noqa: F811
    model = mlp_gemm(hidden=128, inter=256)
    got, feeds = _run(farm, model, mode, tmp_path)
    (exact,) = models.onnxruntime_outputs(dequantized_twin(model, BITS[mode], 64), feeds)
    np.testing.assert_allclose(got[0], exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["int8-weight", "int4-weight"])
def test_weight_only_cortex_m7_package_matches_onnxruntime_under_qemu(mode, tmp_path):
    from accel.micro import harness

    from .conftest import require_tool

    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)
    model = mlp_gemm(hidden=64, inter=128)
    options = CompileOptions(quantize=QuantizeOptions(mode=mode, group_size=32))
    fp32 = accel.compile(model, "cortex-m7", output=tmp_path / "fp32")
    package = accel.compile(model, "cortex-m7", options=options, output=tmp_path / "q")
    feeds = models.feeds_for(model)
    expected = models.onnxruntime_outputs(dequantized_twin(model, BITS[mode], 32), feeds)
    main_c = harness.check_main(package, inputs=list(feeds.values()), expected=expected,
                                rtol=1e-4, atol=1e-4)
    exe = harness.build_test(package, main_c, work=tmp_path / "work", board="cortex-m7")
    result = harness.run_test(exe, board="cortex-m7")
    assert result.returncode == 0, result.output
    # the Gemm bias stays float32 and scales come every 32 channels: 3.5x and 6.1x here
    ratio = fp32.manifest["report"]["weights_bytes"] / package.manifest["report"]["weights_bytes"]
    assert ratio > (3.0 if mode == "int8-weight" else 5.0)

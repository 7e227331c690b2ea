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

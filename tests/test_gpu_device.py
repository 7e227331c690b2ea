"""On a machine with an NVIDIA GPU: compiled models run there and match onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

import accel

from . import models

pytestmark = pytest.mark.device


def _cuda_target() -> str:
    import tvm

    if not tvm.cuda(0).exist:
        pytest.skip("no CUDA GPU on this machine (runs on the device machine)")
    major = int(tvm.cuda(0).compute_version.split(".")[0])
    return "cuda-sm90" if major >= 9 else "cuda-sm80"


@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_model_runs_on_the_gpu_and_matches_onnxruntime(name, tmp_path):
    target = _cuda_target()
    model = models.ALL_ONNX[name]()
    feeds = models.feeds_for(model)
    module = accel.load(accel.compile(model, target, output=tmp_path / "m.accel").path)
    for got, want in zip(module(**feeds), models.onnxruntime_outputs(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

"""Every optimization level under every convolution layout gives onnxruntime's numbers."""

from __future__ import annotations

import numpy as np
import pytest

import accel
from accel.errors import UsageError
from accel.layout import resolved_layout
from accel.options import CompileOptions, Layout

from . import models


@pytest.mark.e2e
@pytest.mark.parametrize("layout", [layout.value for layout in Layout])
@pytest.mark.parametrize("level", ["O0", "O1", "O2", "O3"])
@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_each_level_and_layout_matches_onnxruntime(name, level, layout, model_dir, tmp_path):
    model = models.ALL_ONNX[name]()
    feeds = models.feeds_for(model)
    options = CompileOptions(opt_level=level, desired_layout=layout)
    artifact = accel.compile(model_dir / f"{name}.onnx", "host", options=options,
                             output=tmp_path / "m.accel")
    got = accel.load(artifact.path)(**feeds)
    for g, e in zip(got, models.onnxruntime_outputs(model, feeds), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.unit
def test_cpu_families_default_to_blocked_or_nhwc_and_gpus_keep_the_model_layout():
    assert resolved_layout("x86-cpu", CompileOptions()) is Layout.NCHWC
    assert resolved_layout("arm-cpu", CompileOptions()) is Layout.NHWC
    assert resolved_layout("cuda", CompileOptions()) is Layout.NATIVE
    assert resolved_layout("x86-cpu", CompileOptions(desired_layout="native")) is Layout.NATIVE


@pytest.mark.unit
def test_unknown_layout_lists_the_valid_ones():
    with pytest.raises(UsageError) as info:
        CompileOptions(desired_layout="NCHW4x")
    assert "native" in str(info.value.hint) and "NHWC" in str(info.value.hint)


@pytest.mark.unit
def test_cli_desired_layout_flag_reaches_the_options(tmp_path, capsys, monkeypatch):
    from accel.cli import main

    seen = {}

    def fake_compile(*_args, options, **_kwargs):
        seen["options"] = options
        raise UsageError("stop here")

    monkeypatch.setattr("accel.compiler.compile", fake_compile)
    code = main(["compile", "m.onnx", "-o", str(tmp_path / "m.accel"),
                 "--desired-layout", "nhwc"])
    assert code == UsageError.exit_code
    assert seen["options"].desired_layout is Layout.NHWC

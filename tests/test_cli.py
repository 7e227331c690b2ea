"""The CLI end to end: targets, compile, run, bench, info, demo; `main(argv) -> int`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from accel.cli import main

from . import models

pytestmark = pytest.mark.e2e


def test_targets_list_prints_one_line_per_target(capsys):
    assert main(["targets", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 16
    assert any(line.startswith("rpi4 ") for line in lines)


def test_targets_show_prints_resolved_json_and_fingerprint(capsys):
    assert main(["targets", "show", "rpi4"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tvm"]["mcpu"] == "cortex-a72"
    assert len(shown["fingerprint"]) == 16


def test_compile_run_and_info(capsys, model_dir, tmp_path):
    out = tmp_path / "m.accel"
    assert main(["compile", str(model_dir / "mlp_two_inputs.onnx"), "-o", str(out), "-v"]) == 0
    printed = capsys.readouterr().out
    assert "kernels" in printed and "fuse" in printed
    model = models.mlp_two_inputs()
    feeds = models.feeds_for(model)
    np.savez(tmp_path / "in.npz", **feeds)
    assert main(["run", str(out), "--inputs", str(tmp_path / "in.npz"),
                 "-o", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as got:
        expected = models.onnxruntime_outputs(model, feeds)
        np.testing.assert_allclose(got["probs"], expected[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["mean"], expected[1], rtol=1e-4, atol=1e-6)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["target"]["name"] == "host"


def test_bench_prints_ratio_against_onnxruntime(capsys, model_dir, host_artifacts):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    assert main(["bench", str(host_artifacts["conv_block"]), "--compare", "onnxruntime",
                 "--model", str(model_dir / "conv_block.onnx"), "--rounds", "2",
                 "--calls", "3"]) == 0
    out = capsys.readouterr().out
    assert "vs onnxruntime" in out and "1.00x" in out
    diff = float(out.split("max |accel - onnxruntime| = ")[1].split()[0])
    assert diff < 1e-4


def test_dump_ir_writes_one_file_per_pass(model_dir, tmp_path):
    assert main(["compile", str(model_dir / "conv_block.onnx"), "-o", str(tmp_path / "m.accel"),
                 "--dump-ir", str(tmp_path / "ir")]) == 0
    dumped = sorted(p.name for p in (tmp_path / "ir").iterdir())
    assert any("FuseOps" in name for name in dumped)
    assert len(dumped) > 10


def test_demo_runs_the_main_job(capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    assert main(["demo", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "compiled mobilenet_tiny.onnx for 'host'" in out
    assert "onnxruntime" in out
    assert float(out.split("max |accel - onnxruntime| = ")[1].split()[0]) < 1e-4


def test_console_script_exit_code_for_a_user_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "accel", "compile", str(tmp_path / "x.onnx"),
                             "-o", str(tmp_path / "o.accel")], capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stderr.strip().startswith("accel: error:")
    assert "Traceback" not in result.stderr

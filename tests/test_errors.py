"""Bad input gets one clear line and a stable exit code, never a TVM traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import accel
from accel import errors
from accel.cli import main

from . import models

pytestmark = pytest.mark.unit


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def _assert_one_clear_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("accel: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_missing_model_file(capsys, tmp_path):
    code, err = _cli(capsys, "compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "o"))
    assert code == errors.ModelFileError.exit_code
    _assert_one_clear_line(err, "nope.onnx", "no such file")


def test_a_text_file_is_not_a_model(capsys, tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n" * 10)
    code, err = _cli(capsys, "compile", str(path), "-o", str(tmp_path / "o.accel"))
    assert code == errors.ModelFileError.exit_code
    _assert_one_clear_line(err, "notes.onnx", "not an ONNX model")


def test_truncated_onnx_is_reported(capsys, tmp_path):
    data = models.conv_block().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    code, err = _cli(capsys, "compile", str(path), "-o", str(tmp_path / "o.accel"))
    assert code in (errors.ModelFileError.exit_code, errors.InvalidModelError.exit_code)
    _assert_one_clear_line(err, "cut.onnx")


def test_malformed_onnx_names_the_problem(capsys, tmp_path):
    model = models.conv_block()
    model.graph.node[2].input[0] = "does_not_exist"
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    code, err = _cli(capsys, "compile", str(path), "-o", str(tmp_path / "o.accel"))
    assert code == errors.InvalidModelError.exit_code
    _assert_one_clear_line(err, "bad.onnx", "malformed", "does_not_exist")


def test_unsupported_ops_are_all_listed_with_node_names(tmp_path):
    path = tmp_path / "u.onnx"
    onnx.save(models.unsupported_ops(), path)
    with pytest.raises(errors.UnsupportedOpError) as info:
        accel.compile(path, output=tmp_path / "u.accel")
    message = str(info.value)
    assert "com.example::MyCustomOp (no converter; nodes: custom1, custom2)" in message
    assert "Det (no converter; nodes: det1)" in message
    assert "ok_relu" not in message
    assert not (tmp_path / "u.accel").exists()


def test_unknown_target_exit_code_and_suggestion(capsys, model_dir, tmp_path):
    code, err = _cli(capsys, "compile", str(model_dir / "conv_block.onnx"), "-t", "rpi-4",
                     "-o", str(tmp_path / "o.accel"))
    assert code == errors.TargetError.exit_code
    _assert_one_clear_line(err, "unknown target 'rpi-4'", "did you mean 'rpi4'")


def test_dynamic_dims_without_shapes_name_the_dim_and_the_fix(capsys, tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(models.dynamic_batch(), path)
    code, err = _cli(capsys, "compile", str(path), "-o", str(tmp_path / "o.accel"))
    assert code == errors.ShapeError.exit_code
    _assert_one_clear_line(err, "input 'x'", "dim 0 ('N')", "--input-shape x=N,4")


def test_input_shape_for_an_unknown_input_is_refused(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(models.dynamic_batch(), path)
    with pytest.raises(errors.ShapeError, match="unknown input 'y' \\(valid: x\\)"):
        accel.compile(path, options=accel.CompileOptions(input_shapes={"y": (1, 4)}))


def test_bad_opt_level_lists_choices():
    with pytest.raises(errors.UsageError, match="valid: O0, O1, O2, O3"):
        accel.CompileOptions(opt_level="O7")


def test_unknown_disabled_pass_is_refused(model_dir):
    with pytest.raises(errors.UsageError, match="FuseOpz.*did you mean 'FuseOps'"):
        accel.compile(model_dir / "conv_block.onnx",
                      options=accel.CompileOptions(disabled_passes=("FuseOpz",)))


def test_wrong_input_name_at_run_time(host_artifacts):
    module = accel.load(host_artifacts["mlp_two_inputs"])
    with pytest.raises(errors.InputError, match="unknown input 'c'.*valid: a, b"):
        module(a=np.zeros((2, 4, 16), np.float32), c=np.zeros((2, 4, 16), np.float32))


def test_missing_input_lists_the_signature(host_artifacts):
    module = accel.load(host_artifacts["mlp_two_inputs"])
    with pytest.raises(errors.InputError, match=r"missing input\(s\) b.*b: float32\[2, 4, 16\]"):
        module(np.zeros((2, 4, 16), np.float32))


def test_wrong_input_shape_at_run_time(host_artifacts):
    module = accel.load(host_artifacts["conv_block"])
    with pytest.raises(errors.InputError, match=r"'x' has shape \[1, 3, 8, 8\], expected "
                                                r"\[1, 3, 16, 16\]"):
        module(np.zeros((1, 3, 8, 8), np.float32))


def test_wrong_input_dtype_at_run_time(host_artifacts):
    module = accel.load(host_artifacts["conv_block"])
    with pytest.raises(errors.InputError, match="'x' has dtype float64, expected float32"):
        module(np.zeros((1, 3, 16, 16), np.float64))


def test_cli_run_with_a_wrong_input_name_exits_cleanly(capsys, host_artifacts, tmp_path):
    np.savez(tmp_path / "in.npz", z=np.zeros((1, 3, 16, 16), np.float32))
    code, err = _cli(capsys, "run", str(host_artifacts["conv_block"]), "--inputs",
                     str(tmp_path / "in.npz"))
    assert code == errors.InputError.exit_code
    _assert_one_clear_line(err, "unknown input 'z'", "valid: x")


def test_failed_compile_leaves_no_partial_artifact(tmp_path, monkeypatch):
    from accel import export

    def broken(*_args, **_kwargs):
        raise errors.ToolchainError("linker exploded")

    monkeypatch.setattr(export, "export_library", broken)
    out = tmp_path / "m.accel"
    with pytest.raises(errors.ToolchainError):
        accel.compile(models.conv_block(), output=out, cache="off")
    assert list(tmp_path.iterdir()) == []


def test_missing_cross_compiler_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cross compiler reachable
    with pytest.raises(errors.ToolchainError, match="aarch64-linux-gnu-g\\+\\+.*"
                                                    "g\\+\\+-aarch64-linux-gnu"):
        accel.compile(models.conv_block(), "rpi4", output=tmp_path / "m.accel", cache="off")
    assert not (tmp_path / "m.accel").exists()

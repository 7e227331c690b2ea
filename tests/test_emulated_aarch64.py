"""AArch64 artifacts run on an emulated RPC device (qemu-user + an arm64 Python sysroot) and
match onnxruntime; `accel run` and `accel bench` reach it through the tracker."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import accel
from accel.cli import main
from accel.remote import load_remote
from accel.tuning.options import RPCOptions

from . import models
from .conftest import require_tool

pytestmark = pytest.mark.emulated

TARGETS = ("aarch64-linux", "rpi4", "rpi5")
KEY = "accel-test-aarch64"


@pytest.fixture(scope="session")
def farm():
    """One emulated AArch64 RPC server under a tracker on 127.0.0.1, for the whole session.

    The sysroot (Debian arm64 packages, aarch64 wheels) is cached in the user cache folder,
    so only the first session downloads it.
    """
    import platformdirs

    from accel.emulation.farm import local_farm
    from accel.emulation.sysroot import EmulatorUnavailable

    require_tool("aarch64-linux-gnu-g++")
    cache = Path(platformdirs.user_cache_dir("accel")) / "emulation"
    try:
        with local_farm(KEY, cache=cache) as rpc:
            yield rpc
    except EmulatorUnavailable as exc:
        pytest.skip(f"no AArch64 emulation here: {exc}")


def _compile(model, target, tmp_path, name):
    label = getattr(target, "name", target)
    return accel.compile(model, target, output=tmp_path / f"{name}-{label}.accel")


def _check_remote(farm, model, target, tmp_path, name):
    artifact = _compile(model, target, tmp_path, name)
    feeds = models.feeds_for(model)
    started = time.perf_counter()
    remote = load_remote(artifact.path, farm)
    ours = remote(**feeds)
    label = getattr(target, "name", target)
    print(f"{label}/{name}: loaded and ran under QEMU in {time.perf_counter() - started:.2f} s")
    for got, want in zip(ours, models.onnxruntime_outputs(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        print(f"{label}/{name}: max |accel - onnxruntime| = {np.max(np.abs(got - want)):.3g}")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_aarch64_artifact_runs_on_the_emulated_device_and_matches_onnxruntime(
        farm, target, name, tmp_path):
    _check_remote(farm, models.ALL_ONNX[name](), target, tmp_path, name)


def test_a_small_resnet_runs_on_the_emulated_rpi4_and_matches_onnxruntime(farm, tmp_path):
    _check_remote(farm, models.resnet_tiny(), "rpi4", tmp_path, "resnet_tiny")


def test_accel_run_reaches_the_emulated_device_through_the_tracker(farm, tmp_path, capsys):
    model = models.mlp_two_inputs()
    artifact = _compile(model, "rpi5", tmp_path, "mlp")
    feeds = models.feeds_for(model)
    np.savez(tmp_path / "in.npz", **feeds)
    tracker = f"{farm.tracker_host}:{farm.tracker_port}"
    assert main(["run", str(artifact.path), "--inputs", str(tmp_path / "in.npz"), "-o",
                 str(tmp_path / "out.npz"), "--rpc-tracker", tracker, "--rpc-key", KEY]) == 0
    with np.load(tmp_path / "out.npz") as out:
        for name, want in zip(("probs", "mean"), models.onnxruntime_outputs(model, feeds),
                              strict=True):
            np.testing.assert_allclose(out[name], want, rtol=1e-4, atol=1e-5)


def test_accel_bench_times_on_the_emulated_device_beside_onnxruntime(farm, tmp_path, capsys):
    model = models.conv_block()
    artifact = _compile(model, "aarch64-linux", tmp_path, "conv")
    import onnx

    onnx.save(model, tmp_path / "conv.onnx")
    tracker = f"{farm.tracker_host}:{farm.tracker_port}"
    assert main(["bench", str(artifact.path), "--rpc-tracker", tracker, "--rpc-key", KEY,
                 "--compare", "onnxruntime", "--model", str(tmp_path / "conv.onnx"),
                 "--rounds", "2", "--calls", "3"]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "| accel" in out and "max |accel - onnxruntime|" in out


def test_the_remote_time_evaluator_reports_device_latency(farm, tmp_path):
    model = models.conv_block()
    remote = load_remote(_compile(model, "rpi4", tmp_path, "conv").path, farm)
    stats = remote.time(models.feeds_for(model), number=2, repeat=3)
    print(f"rpi4/conv_block under QEMU: median {stats.median_ms:.2f} ms per call")
    assert len(stats.samples) == 3 and stats.median_ms > 0


def test_an_unknown_key_is_a_clear_error_naming_the_keys_there(farm, tmp_path, capsys):
    artifact = _compile(models.conv_block(), "rpi4", tmp_path, "conv")
    tracker = f"{farm.tracker_host}:{farm.tracker_port}"
    assert main(["run", str(artifact.path), "--rpc-tracker", tracker,
                 "--rpc-key", "no-such-board"]) == 14
    err = capsys.readouterr().err
    assert "no device is registered under key 'no-such-board'" in err and KEY in err


@pytest.mark.e2e
def test_an_unreachable_tracker_fails_fast_with_a_clear_error(host_artifacts, capsys):
    started = time.perf_counter()
    code = main(["run", str(host_artifacts["conv_block"]), "--rpc-tracker", "127.0.0.1:9",
                 "--rpc-key", "rpi4"])
    assert code == 14 and time.perf_counter() - started < 15
    assert "cannot reach the RPC tracker at 127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.unit
def test_rpc_key_without_tracker_is_a_usage_error(capsys):
    assert main(["run", "x.accel", "--rpc-key", "rpi4"]) == 2
    assert "--rpc-key needs --rpc-tracker" in capsys.readouterr().err


def test_rpc_options_parse_rejects_a_bad_address():
    from accel.errors import UsageError

    with pytest.raises(UsageError, match="bad --rpc-tracker"):
        RPCOptions.parse("nohost", "rpi4")


def test_an_android_so_linked_with_a_named_toolchain_runs_on_the_emulated_device(farm, tmp_path):
    """The Debian cross g++ stands in for the NDK clang, and the emulated device runs glibc, not
    bionic: this proves the exported code and its TVM ABI, not the Android loader."""
    from accel.ndk import with_toolchain
    from accel.target import get_target

    spec = with_toolchain(get_target("android-arm64"), require_tool("aarch64-linux-gnu-g++"))
    _check_remote(farm, models.conv_block(), spec, tmp_path, "conv_block")


def test_tuning_measures_on_the_emulated_device_and_compile_applies_it(farm, tmp_path):
    from accel.options import CompileOptions
    from accel.tuning.options import TuneOptions
    from accel.tuning.tuner import tune

    from .test_tuning import tiny_dense

    compile_options = CompileOptions(tuning_logs=str(tmp_path / "records"))
    options = TuneOptions(trials=3, rpc=farm, work_dir=tmp_path / "work", population=16,
                          trials_per_iter=2, seed=1, compile_options=compile_options)
    report = tune(tiny_dense(), "rpi4", options=options, progress=print)
    assert report.trials >= 3 and report.failed_trials == 0 and report.estimated_ms is not None
    artifact = accel.compile(tiny_dense(), "rpi4", options=compile_options,
                             output=tmp_path / "tuned-rpi4.accel")
    assert artifact.manifest["report"]["kernels_tuned"] == 1
    feeds = models.feeds_for(tiny_dense())
    got = load_remote(artifact.path, farm)(**feeds)[0]
    np.testing.assert_allclose(got, models.onnxruntime_outputs(tiny_dense(), feeds)[0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", ["rpi5", "aarch64-linux"])  # sdot; no dot product
@pytest.mark.parametrize("x_type", ["uint8", "int8"])
def test_int8_qlinearconv_on_the_emulated_device_is_exact(farm, target, x_type, tmp_path):
    from onnx import TensorProto
    from onnx.reference import ReferenceEvaluator

    from .test_qoperator_import import _qlinearconv

    onnx_type = TensorProto.UINT8 if x_type == "uint8" else TensorProto.INT8
    model, feeds = _qlinearconv(x_type=onnx_type, w_type=TensorProto.INT8,
                                x_zp=3 if x_type == "uint8" else -3, w_zp=[0] * 32, cin=16,
                                cout=32, group=1, pad=1, stride=1,
                                rng=np.random.default_rng(0))
    remote = load_remote(_compile(model, target, tmp_path, "qconv").path, farm)
    got = remote(**feeds)[0]
    del remote  # frees the emulated device for the next test
    np.testing.assert_array_equal(got, ReferenceEvaluator(model).run(None, feeds)[0])

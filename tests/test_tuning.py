"""Tuning for real: measure a tiny model here and over a loopback RPC farm, kill, resume, apply."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accel
from accel.options import CompileOptions
from accel.tuning import database
from accel.tuning.options import RPCOptions, TuneOptions
from accel.tuning.tuner import tune

from . import models

pytestmark = pytest.mark.e2e
TARGET = "x86-64-avx2"


def tiny_dense() -> onnx.ModelProto:
    """MatMul + bias + Relu: one fused kernel to tune."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    weights = [numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b")]
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [4, 64])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [4, 32])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture
def dense_file(tmp_path):
    path = tmp_path / "dense.onnx"
    onnx.save(tiny_dense(), path)
    return path


def _options(tmp_path, **kw) -> TuneOptions:
    logs = str(tmp_path / "records")
    return TuneOptions(work_dir=tmp_path / "work", population=16, trials_per_iter=2, seed=1,
                       compile_options=CompileOptions(tuning_logs=logs), **kw)


def _lines(path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def test_tuned_records_are_applied_by_compile_and_match_onnxruntime(dense_file, tmp_path):
    options = _options(tmp_path, trials=4)
    report = tune(dense_file, TARGET, options=options, progress=lambda _: None)
    assert report.trials >= 4 and report.estimated_ms is not None and report.failed_trials == 0
    assert report.records_dir is not None and (report.records_dir / "manifest.json").is_file()
    assert report.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifact = accel.compile(dense_file, TARGET, options=options.compile_options,
                             output=tmp_path / "tuned.accel")
    assert artifact.manifest["report"]["kernels_tuned"] >= 1
    untuned = accel.compile(dense_file, TARGET, output=tmp_path / "plain.accel")
    assert untuned.manifest["cache_key"] != artifact.manifest["cache_key"]
    assert untuned.manifest["report"]["kernels_tuned"] == 0
    feeds = models.feeds_for(tiny_dense())
    want = models.onnxruntime_outputs(tiny_dense(), feeds)[0]
    np.testing.assert_allclose(accel.load(artifact.path)(**feeds)[0], want, rtol=1e-4, atol=1e-5)


def tiny_embedding() -> onnx.ModelProto:
    """Gather from a 1000-row table, then a MatMul: the gather kernel reads int64 indices."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]),
             helper.make_node("MatMul", ["e", "w"], ["y"])]
    weights = [numpy_helper.from_array(rng.standard_normal((1000, 16)).astype(np.float32),
                                       "table"),
               numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w")]
    graph = helper.make_graph(nodes, "embed", [helper.make_tensor_value_info(
        "ids", TensorProto.INT64, [1, 32])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 32, 8])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_gather_kernel_is_measured_with_valid_indices(tmp_path):
    """Random int64 indices would read far outside the table and fail every trial."""
    path = tmp_path / "embed.onnx"
    onnx.save(tiny_embedding(), path)
    report = tune(path, TARGET, options=_options(tmp_path, trials=4), progress=lambda _: None)
    assert report.failed_trials == 0
    assert {t["name"] for t in report.tasks} >= {"take"}
    assert all(t["best_us"] is not None for t in report.tasks), report.tasks


def test_a_finished_work_dir_is_not_reused_without_resume(dense_file, tmp_path):
    from accel.errors import UsageError

    tune(dense_file, TARGET, options=_options(tmp_path, trials=2), progress=lambda _: None)
    with pytest.raises(UsageError, match="holds an earlier tuning run.*--resume"):
        tune(dense_file, TARGET, options=_options(tmp_path, trials=2), progress=lambda _: None)


def _start_tuner(dense_file, tmp_path, trials, rpc=()):
    """`accel tune` in a child process (so that it can be killed), with a tiny search."""
    cmd = [sys.executable, "-m", "accel", "tune", str(dense_file), "-t", TARGET,
           "--trials", str(trials), "--work-dir", str(tmp_path / "work"), "--population", "16",
           "--trials-per-iter", "2", "--seed", "1", "--tuning-logs", str(tmp_path / "records")]
    if rpc:
        cmd += ["--rpc-tracker", rpc[0], "--rpc-key", rpc[1]]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_records(path, count, proc, timeout=300):
    deadline = time.time() + timeout
    while len(_lines(path)) < count:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no records measured in time"
        time.sleep(0.5)


def test_a_killed_tuner_resumes_without_losing_records(dense_file, tmp_path):
    records = tmp_path / "work" / database.RECORDS
    proc = _start_tuner(dense_file, tmp_path, trials=10)
    _wait_for_records(records, 2, proc)
    import psutil

    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert alive == []  # the builder and runner workers died with the tuner, none orphaned
    kept = _lines(records)
    with open(records, "a") as f:
        f.write('[0, [["torn')  # a line cut short by the kill
    report = tune(dense_file, TARGET, options=_options(tmp_path, resume=True),
                  progress=lambda _: None)
    assert report.trials >= 10
    assert _lines(records)[:len(kept)] == kept  # every measured record is still there
    state = json.loads((tmp_path / "work" / "accel-tune.json").read_text())
    assert state["trials"] == 10  # the budget came from the first run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture
def farm(tmp_path):
    """An RPC tracker and two servers under key 'box' on loopback; yields (tracker, servers)."""
    pytest.importorskip("tornado", reason="the RPC tracker needs tornado (apache-tvm[rpc])")
    tracker = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host",
                               "127.0.0.1", "--port", str(tracker), "--port-end",
                               str(tracker + 1), "--silent"])]
    _wait_port(tracker)
    servers = {}
    for _ in range(2):
        port = _free_port()
        servers[port] = subprocess.Popen(
            [sys.executable, "-m", "tvm.exec.rpc_server", "--tracker", f"127.0.0.1:{tracker}",
             "--key", "box", "--host", "127.0.0.1", "--port", str(port), "--port-end",
             str(port + 1)], env={**os.environ, "TVM_NUM_THREADS": "1"},
            start_new_session=True)  # a process group: killing it takes the device away whole
    procs += servers.values()
    rpc = RPCOptions("127.0.0.1", tracker, "box", session_timeout_s=30)
    from accel.tuning import farm as farm_mod

    deadline = time.time() + 60
    while len(farm_mod.devices(rpc)) < 2:
        assert time.time() < deadline, "the RPC servers did not register"
        time.sleep(0.5)
    yield rpc, servers
    for proc in procs:
        _kill_group(proc)


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def test_a_farm_losing_a_device_mid_run_finishes_on_the_other_and_resumes(dense_file,
                                                                         tmp_path, farm):
    rpc, servers = farm
    records = tmp_path / "work" / database.RECORDS
    proc = _start_tuner(dense_file, tmp_path, trials=6,
                        rpc=(f"{rpc.tracker_host}:{rpc.tracker_port}", rpc.key))
    _wait_for_records(records, 2, proc)
    port, victim = next(iter(servers.items()))
    _kill_group(victim)  # a device dropping off the farm mid-run
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert f"devices lost during the run: 127.0.0.1:{port}" in out
    kept = _lines(records)
    assert len(kept) >= 6
    report = tune(dense_file, TARGET, options=_options(tmp_path, resume=True, rpc=rpc, trials=8),
                  progress=lambda _: None)
    assert report.trials >= 8 and report.estimated_ms is not None
    assert _lines(records)[:len(kept)] == kept

"""Compile for this host and compare with onnxruntime (ONNX) and eager PyTorch (torch)."""

from __future__ import annotations

import numpy as np
import pytest

import accel

from . import models

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_onnx_model_matches_onnxruntime(name, host_artifacts):
    model = models.ALL_ONNX[name]()
    feeds = models.feeds_for(model)
    expected = models.onnxruntime_outputs(model, feeds)
    got = accel.load(host_artifacts[name])(**feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_inputs_by_position_equal_inputs_by_name(host_artifacts):
    module = accel.load(host_artifacts["mlp_two_inputs"])
    feeds = models.feeds_for(models.mlp_two_inputs())
    by_name = module(b=feeds["b"], a=feeds["a"])
    by_position = module(feeds["a"], feeds["b"])
    mixed = module(feeds["a"], b=feeds["b"])
    for x, y, z in zip(by_name, by_position, mixed, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_manifest_records_signature_target_hashes_and_versions(host_artifacts, model_dir):
    from accel.fsutil import sha256_file

    manifest = accel.open_artifact(host_artifacts["mlp_two_inputs"]).manifest
    assert [t["name"] for t in manifest["inputs"]] == ["a", "b"]
    assert manifest["outputs"] == [{"name": "probs", "shape": [2, 4, 16], "dtype": "float32"},
                                   {"name": "mean", "shape": [2, 4], "dtype": "float32"}]
    assert manifest["model"]["sha256"] == sha256_file(model_dir / "mlp_two_inputs.onnx")
    assert manifest["target"]["name"] == "host"
    assert manifest["target"]["tvm"]["kind"] == "llvm"
    assert len(manifest["library"]["sha256"]) == 64
    assert set(manifest["versions"]) >= {"accel", "tvm", "tvm_ffi"}
    assert manifest["versions"]["tvm"] == "0.27.0.post1"
    assert manifest["options"]["opt_level"] == "O2"


def test_fusion_reduces_the_kernel_count(host_artifacts):
    report = accel.open_artifact(host_artifacts["conv_block"]).manifest["report"]
    assert report["kernels"] < report["kernels_unfused"]


@pytest.mark.parametrize("level", ["O0", "O1", "O3"])
def test_every_opt_level_gives_the_same_numbers(level, model_dir, tmp_path):
    model = models.conv_block()
    feeds = models.feeds_for(model)
    artifact = accel.compile(model_dir / "conv_block.onnx", "host", output=tmp_path / "m.accel",
                             options=accel.CompileOptions(opt_level=level))
    got = accel.load(artifact.path)(**feeds)
    np.testing.assert_allclose(got[0], models.onnxruntime_outputs(model, feeds)[0],
                               rtol=1e-4, atol=1e-5)


def test_in_memory_modelproto_compiles_without_output_path():
    model = models.conv_block()
    artifact = accel.compile(model)
    assert artifact.path.is_file() and artifact.path.suffix == ".accel"
    feeds = models.feeds_for(model)
    np.testing.assert_allclose(accel.load(artifact.path)(**feeds)[0],
                               models.onnxruntime_outputs(model, feeds)[0], rtol=1e-4, atol=1e-5)


def test_dynamic_batch_compiles_with_input_shape(tmp_path):
    import onnx

    path = tmp_path / "dyn.onnx"
    onnx.save(models.dynamic_batch(), path)
    options = accel.CompileOptions(input_shapes={"x": (3, 4)})
    module = accel.load(accel.compile(path, output=tmp_path / "d.accel", options=options).path)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(module(x)[0], np.maximum(x, 0))


def test_eight_threads_share_one_module(host_artifacts):
    from concurrent.futures import ThreadPoolExecutor

    module = accel.load(host_artifacts["conv_block"])
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(16)]
    expected = [module(x)[0] for x in inputs]

    def worker(i):
        return all(np.array_equal(module(inputs[(i + k) % 16])[0], expected[(i + k) % 16])
                   for k in range(50))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(worker, range(8)))

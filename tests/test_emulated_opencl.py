"""The OpenCL kernels of Mali and Adreno artifacts run on PoCL (accel.opencl: launch plan +
pyopencl) and match onnxruntime; Adreno's texture kernels run on PoCL image arrays."""

from __future__ import annotations

import time

import numpy as np
import pytest

import accel
from accel.cli import main
from accel.model import load_model
from accel.options import CompileOptions
from accel.target import get_target

from . import models
from .conftest import require_tool

pytestmark = pytest.mark.emulated

TARGETS = ("mali-g78", "adreno-740")


@pytest.fixture(scope="session")
def cl_context():
    """An OpenCL context (PoCL's CPU device here); skips when there is no OpenCL at all."""
    pytest.importorskip("pyopencl", reason="pyopencl is not installed (pip install pyopencl)")
    from accel.opencl import OpenCLUnavailable, opencl_context

    try:
        return opencl_context()
    except OpenCLUnavailable as exc:
        pytest.skip(f"{exc} (.ci/run installs pocl-opencl-icd)")


def _run_on_opencl(cl_context, model, target, tmp_path):
    """Compile the artifact and run its kernels from its own members (plan, weights, source)."""
    from accel.opencl.emulate import load_emulated

    if target == "mali-g78":
        require_tool("aarch64-linux-gnu-g++")
    artifact = accel.compile(model, target, output=tmp_path / f"{target}.accel")
    module = load_emulated(artifact.path, context=cl_context)
    feeds = models.feeds_for(model)
    started = time.perf_counter()
    outputs = module(**feeds)
    plan = module._runner.plan
    print(f"{target}: {sum(len(s.launches) for s in plan.steps)} kernel launches ran on "
          f"OpenCL in {time.perf_counter() - started:.3f} s")
    return plan, outputs, models.onnxruntime_outputs(model, feeds)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_opencl_kernels_run_on_pocl_and_match_onnxruntime(cl_context, target, name, tmp_path):
    _, ours, theirs = _run_on_opencl(cl_context, models.ALL_ONNX[name](), target, tmp_path)
    for got, want in zip(ours, theirs, strict=True):
        print(f"{target}/{name}: max |accel - onnxruntime| = {np.max(np.abs(got - want)):.3g}")
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_small_resnet_runs_on_pocl_for_mali_and_matches_onnxruntime(cl_context, tmp_path):
    _, ours, theirs = _run_on_opencl(cl_context, models.resnet_tiny(), "mali-g78", tmp_path)
    print(f"mali-g78/resnet_tiny: max |accel - onnxruntime| = "
          f"{np.max(np.abs(ours[0] - theirs[0])):.3g}")
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4, atol=1e-5)


def test_adreno_texture_kernels_build_and_run_on_pocl_image_arrays(cl_context, tmp_path):
    plan, ours, theirs = _run_on_opencl(cl_context, models.texture_conv(), "adreno-740",
                                        tmp_path)
    textures = {n for n, t in plan.tensors.items() if t.scope.startswith("global.texture")}
    assert len(textures) >= 3  # activations between the convs and the biases
    assert ours[0].shape == theirs[0].shape and np.isfinite(ours[0]).all()


@pytest.mark.xfail(strict=True, reason="TVM 0.27 Adreno codegen: VectorizeLoop scalarizes every "
                   "texture store loop, so each texel is written with one broadcast scalar "
                   "(float4 v_ = scalar; write_imagef), in layout transforms and convs alike")
def test_adreno_texture_path_matches_onnxruntime(cl_context, tmp_path):
    _, ours, theirs = _run_on_opencl(cl_context, models.texture_conv(), "adreno-740", tmp_path)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4, atol=1e-5)


def test_the_stored_plan_is_the_plan_the_pipeline_builds(cl_context, tmp_path):
    from accel.opencl import build_plan
    from accel.opencl.plan import plan_members

    model = models.conv_block()
    artifact = accel.compile(model, "adreno-740", output=tmp_path / "a.accel")
    replayed = plan_members(build_plan(load_model(model, options=CompileOptions()),
                                       get_target("adreno-740")))
    for name, data in replayed.items():
        if name.endswith(".json"):
            assert artifact.read_member(name) == data


def test_accel_run_emulate_runs_a_mali_artifact_on_pocl(cl_context, tmp_path):
    require_tool("aarch64-linux-gnu-g++")
    model = models.mlp_two_inputs()
    artifact = accel.compile(model, "mali-g78", output=tmp_path / "m.accel")
    feeds = models.feeds_for(model)
    np.savez(tmp_path / "in.npz", **feeds)
    assert main(["run", str(artifact.path), "--emulate", "--inputs", str(tmp_path / "in.npz"),
                 "-o", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as out:
        for name, want in zip(("probs", "mean"), models.onnxruntime_outputs(model, feeds),
                              strict=True):
            np.testing.assert_allclose(out[name], want, rtol=1e-4, atol=1e-5)


def test_accel_bench_emulate_times_adreno_kernels_beside_onnxruntime(cl_context, tmp_path,
                                                                     capsys):
    import onnx

    model = models.conv_block()
    onnx.save(model, tmp_path / "c.onnx")
    artifact = accel.compile(model, "adreno-740", output=tmp_path / "c.accel")
    assert main(["bench", str(artifact.path), "--emulate", "--compare", "onnxruntime",
                 "--model", str(tmp_path / "c.onnx"), "--rounds", "2", "--calls", "3"]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "| accel" in out and "max |accel - onnxruntime|" in out


def test_emulate_refuses_a_cpu_artifact_clearly(host_artifacts, capsys):
    assert main(["run", str(host_artifacts["conv_block"]), "--emulate"]) == 9
    assert "is not an OpenCL target" in capsys.readouterr().err


def test_a_plan_naming_a_missing_kernel_is_refused_clearly(cl_context, tmp_path):
    from accel.errors import ArtifactError
    from accel.opencl import OpenCLRunner
    from accel.opencl.emulate import load_emulated

    artifact = accel.compile(models.int_input_embedding(), "adreno-740",
                             output=tmp_path / "e.accel")
    plan = load_emulated(artifact.path, context=cl_context)._runner.plan
    with pytest.raises(ArtifactError, match="names kernels the OpenCL source lacks: .*take_kernel"):
        OpenCLRunner(plan, "__kernel void other(__global float* a) { a[0] = 1.0f; }",
                     context=cl_context)


@pytest.mark.unit
def test_texture_extent_follows_tvm_layout_separators():
    from accel.opencl.plan import TensorInfo
    from accel.opencl.runner import texture_extent

    assert texture_extent(TensorInfo((1, 2, 8, 8, 4), "float32", "global.texture-weight")) == \
        (128, 1)
    assert texture_extent(TensorInfo((1, 2, 8, 8, 4), "float32", "global.texture")) == (8, 16)

"""--quantize fp16: which targets take it, numerics of the float16 module run on this host,
float16 weights, and a CUDA build with half-precision kernels (compile only).

Tolerance. float16 keeps 11 significant bits (unit roundoff 4.9e-4). The conv/matmul products
accumulate in float32, so the error comes from rounding the weights, the inputs and each
elementwise result: a few roundoffs per layer, about 1e-3 relative for these shallow models.
The bound is 3e-3 relative L2 error against onnxruntime's float32 result (measured: 2e-4 to
7e-4).
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest

import accel
from accel.errors import TargetError
from accel.model import load_model
from accel.options import CompileOptions
from accel.quantize import QuantizeOptions
from accel.quantize.fp16 import check_fp16_target, mixed_precision
from accel.quantize.weight_only import weight_bytes
from accel.target import get_target

from .models import conv_block, feeds_for, mlp_two_inputs, onnxruntime_outputs, texture_conv
from .test_quantize_weight_only import mlp_gemm

FP16_BOUND = 3e-3
FP16 = CompileOptions(quantize=QuantizeOptions(mode="fp16"))
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None,
                                reason="nvcc not found on PATH: CUDA codegen needs the toolkit")


@pytest.mark.unit
@pytest.mark.parametrize("name", ["cuda-sm80", "cuda-sm90", "mali-g78", "adreno-740", "rpi5"])
def test_fp16_is_taken_by_gpus_and_cpus_with_native_fp16(name):
    check_fp16_target(get_target(name))  # rpi5: Cortex-A76, +fullfp16


@pytest.mark.unit
@pytest.mark.parametrize("name", ["host", "x86-64-avx2", "aarch64-linux", "cortex-m7"])
def test_fp16_is_refused_on_cpus_without_native_fp16_naming_the_target(name):
    with pytest.raises(TargetError, match=f"target '{name}'.*no native float16") as info:
        check_fp16_target(get_target(name))
    assert "int8-weight" in info.value.hint


def _run_on_host(mod, feeds: dict) -> list[np.ndarray]:
    """Build a Relax module with accel's host pipeline and run it in the Relax VM."""
    import tvm
    from tvm import relax

    from accel.compiler import build

    model = dataclasses.replace(load_model(conv_block()), mod=mod)  # only mod is used
    executable, _, _ = build(model, get_target("host"), CompileOptions())
    vm = relax.VirtualMachine(executable, tvm.cpu())
    out = vm["main"](*(tvm.runtime.tensor(v) for v in feeds.values()))
    return [o.numpy() for o in (out if isinstance(out, tvm.ir.Array | list | tuple) else [out])]


@pytest.mark.e2e
@pytest.mark.parametrize("build", [conv_block, mlp_two_inputs, mlp_gemm])
def test_fp16_module_matches_onnxruntime_fp32_within_fp16_tolerance(build):
    model = build()
    feeds = feeds_for(model)
    mod = mixed_precision(load_model(model).mod)
    got = _run_on_host(mod, feeds)
    for g, e in zip(got, onnxruntime_outputs(model, feeds), strict=True):
        assert g.dtype == np.float32  # the signature stays float32
        error = np.linalg.norm(g - e) / np.linalg.norm(e)
        assert 1e-6 < error < FP16_BOUND  # really computed in float16, within its tolerance


@pytest.mark.unit
def test_fp16_stores_the_weights_as_float16_constants():
    model = load_model(mlp_gemm())
    before = weight_bytes(model.mod)
    after = weight_bytes(mixed_precision(model.mod))
    assert after.get("float16", 0) * 2 == before["float32"]  # every weight, half the bytes
    assert after.get("float32", 0) == 0


@pytest.mark.e2e
@needs_nvcc
def test_fp16_cuda_build_has_half_kernels_a_real_fatbin_and_half_the_bytes(tmp_path):
    from accel import cuda

    cuda.ensure_cuda_codegen(tmp_path / "cuda-cache")
    model = mlp_gemm()
    fp32 = accel.compile(model, "cuda-sm80", cache="off", output=tmp_path / "fp32.accel")
    fp16 = accel.compile(model, "cuda-sm80", options=FP16, cache="off",
                         output=tmp_path / "fp16.accel")
    report = fp16.manifest["report"]["cuda_kernels"]  # ptxas figures: a fatbin was checked
    assert report and all(k["registers"] > 0 for k in report)
    assert any("matmul" in k["name"] for k in report)
    assert [t["dtype"] for t in fp16.manifest["inputs"] + fp16.manifest["outputs"]] == \
        ["float32", "float32"]
    assert fp32.path.stat().st_size / fp16.path.stat().st_size > 1.7
    assert re.search(r"\bhalf\b", _cuda_source(mixed_precision(load_model(model).mod)))
    assert not re.search(r"\bhalf\b", _cuda_source(load_model(model).mod))


def _cuda_source(mod) -> str:
    """The CUDA C that accel's cuda-sm80 build generates for a Relax module."""
    from accel import cuda
    from accel.compiler import build

    model = dataclasses.replace(load_model(conv_block()), mod=mod)
    executable, _, _ = build(model, get_target("cuda-sm80"), CompileOptions())
    return "\n".join(cuda._cuda_sources(executable))


@pytest.mark.e2e
@pytest.mark.parametrize("target,build", [("mali-g78", conv_block), ("adreno-740", texture_conv)])
def test_fp16_compiles_for_opencl_gpus_with_half_kernels(target, build, tmp_path):
    import zipfile

    from .conftest import require_tool

    require_tool("aarch64-linux-gnu-g++")  # both targets' host code is AArch64
    artifact = accel.compile(build(), target, options=FP16, cache="off",
                             output=tmp_path / "gpu.accel")
    with zipfile.ZipFile(artifact.path) as z:
        source = z.read("device/kernels.cl").decode()
    assert "cl_khr_fp16" in source and re.search(r"\bhalf\b", source)
    assert [t["dtype"] for t in artifact.manifest["outputs"]] == ["float32"]
    assert "fallback" not in artifact.manifest["report"]  # Adreno: the texture path held

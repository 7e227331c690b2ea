"""CUDA code generation without a GPU: real fatbins embedded, and ptxas figures per kernel."""

from __future__ import annotations

import ctypes
import re
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accel import cuda

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found on PATH: CUDA codegen "
                                "needs the CUDA toolkit (nvcc, ptxas)")
KERNEL_RE = re.compile(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(')


def _conv_relu_matmul() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3), np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal((8 * 16 * 16, 10), np.float32), "m"),
               numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "m"], ["y"])]
    graph = helper.make_graph(
        nodes, "conv_relu_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def sm80(tmp_path_factory):
    """The tiny model compiled for sm_80 (DLight GPU pipeline), and its export_library file."""
    cuda.ensure_cuda_codegen(tmp_path_factory.mktemp("cuda-cache"))
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    mod = from_onnx(_conv_relu_matmul(), keep_params_in_input=False)
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_80"}, host={"kind": "llvm"})
    with cuda.cuda_compile_env(target):
        ex = tvm.compile(mod, target,
                         relax_pipeline=tvm.relax.backend.cuda.get_default_pipeline(target))
    path = tmp_path_factory.mktemp("cuda-lib") / "model.so"
    ex.export_library(str(path))
    return ex, path


def _kernel_names(ex) -> list[str]:
    (source,) = cuda._cuda_sources(ex)
    return sorted(set(KERNEL_RE.findall(source)))


@pytest.mark.e2e
@needs_nvcc
def test_sm80_module_embeds_a_real_fatbin_not_source(sm80):
    ex, path = sm80
    binaries = cuda.embedded_device_binaries(ex)
    assert binaries and all(cuda.is_fatbin(b) for b in binaries)
    cubins = cuda.device_cubins(ex)
    assert cubins and all(cuda.is_cubin(c) for c in cubins)
    assert cuda.embedded_device_binaries(path) == binaries  # the exported .so carries it
    source = "\n".join(cuda._cuda_sources(ex)).encode()
    assert "__global__" in source.decode() and not cuda.is_fatbin(source)
    assert cuda.embedded_device_binaries(source) == []


@pytest.mark.e2e
@needs_nvcc
def test_ptxas_report_has_one_entry_per_kernel(sm80):
    ex, path = sm80
    report = cuda.ptxas_report(ex)
    assert sorted(r["name"] for r in report) == _kernel_names(ex)
    for row in report:
        assert row["arch"] == "sm_80"
        assert isinstance(row["registers"], int) and row["registers"] > 0
        for key in ("shared_bytes", "stack_frame_bytes", "spill_stores_bytes",
                    "spill_loads_bytes"):
            assert isinstance(row[key], int) and row[key] >= 0, (key, row)
    # Loaded back from disk the source is gone: same figures, spills unknown.
    import tvm

    reloaded = cuda.ptxas_report(tvm.runtime.load_module(str(path)))
    assert reloaded == [dict(r, spill_stores_bytes=None, spill_loads_bytes=None) for r in report]


@pytest.mark.e2e
@needs_nvcc
def test_stub_never_reports_a_device_and_covers_the_runtime(sm80):
    import tvm

    stub = cuda.loaded_stub()
    if stub is None:
        pytest.skip("a real CUDA driver is present: no stub in use")
    assert not tvm.cuda(0).exist
    library = ctypes.CDLL(str(stub))
    needed = cuda._driver_imports(cuda._tvm_lib_dir() / "libtvm_runtime_cuda.so")
    assert needed and all(hasattr(library, name) for name in needed)


PTXAS_SAMPLE = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'spilly' for 'sm_80'
ptxas info    : Function properties for spilly
    9216 bytes stack frame, 9208 bytes spill stores, 19976 bytes spill loads
ptxas info    : Used 24 registers, used 1 barriers, 9216 bytes cumulative stack size, \
1024 bytes smem, 372 bytes cmem[0]
ptxas info    : Function properties for _Z6helperPfi
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Compiling entry function 'plain' for 'sm_90'
ptxas info    : Function properties for plain
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 0 barriers, 368 bytes cmem[0]
"""


@pytest.mark.unit
def test_parse_ptxas_verbose_keeps_entries_and_skips_device_functions():
    assert cuda.parse_ptxas_verbose(PTXAS_SAMPLE) == [
        {"name": "spilly", "arch": "sm_80", "registers": 24, "shared_bytes": 1024,
         "stack_frame_bytes": 9216, "spill_stores_bytes": 9208, "spill_loads_bytes": 19976},
        {"name": "plain", "arch": "sm_90", "registers": 10, "shared_bytes": 0,
         "stack_frame_bytes": 0, "spill_stores_bytes": 0, "spill_loads_bytes": 0},
    ]


@pytest.mark.unit
def test_non_binaries_are_rejected():
    assert not cuda.is_fatbin(b"")
    assert not cuda.is_fatbin(bytes.fromhex("50ed55ba") + bytes(60))
    assert not cuda.is_cubin(b"\x7fELF" + bytes(60))
    assert cuda.embedded_device_binaries(b'extern "C" __global__ void k() {}') == []

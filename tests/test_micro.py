"""C packages for microcontrollers: arena plans, host builds and Cortex-M builds under QEMU."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import accel
from accel import errors
from accel.micro import harness
from accel.micro.plan import Block, peak_live, plan_arena

from . import models
from .conftest import require_tool

RTOL, ATOL = 1e-4, 1e-5
MICRO_MODELS = {"conv_block": models.conv_block, "mlp_two_inputs": models.mlp_two_inputs,
                "ds_cnn_kws": models.ds_cnn_kws}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """compile(name, target) -> CPackage, each compiled once per module."""
    done = {}

    def get(name: str, target: str):
        if (name, target) not in done:
            out = tmp_path_factory.mktemp("pkg") / f"{name}_{target}"
            done[name, target] = accel.compile(MICRO_MODELS[name](), target, output=out)
        return done[name, target]

    return get


def _check_on(package, model, board, work):
    feeds = models.feeds_for(model)
    expected = models.onnxruntime_outputs(model, feeds)
    main_c = harness.check_main(package, inputs=list(feeds.values()), expected=expected,
                                rtol=RTOL, atol=ATOL)
    exe = harness.build_test(package, main_c, work=work, board=board)
    result = harness.run_test(exe, board=board)
    assert result.returncode == 0, result.output
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    return result


# --- unit: the arena planner ----------------------------------------------------------------

@pytest.mark.unit
def test_arena_reuses_memory_of_dead_tensors():
    blocks = [Block("a", 64, 0, 1), Block("b", 64, 1, 2), Block("c", 64, 2, 3)]
    plan = plan_arena(blocks)
    assert plan.offsets["a"] == plan.offsets["c"] and plan.size == 128 == plan.peak_live


@pytest.mark.unit
def test_arena_never_overlaps_tensors_live_at_the_same_call():
    rng = np.random.default_rng(0)
    blocks = [Block(f"t{i}", int(rng.integers(1, 40)) * 16, s, s + int(rng.integers(0, 4)))
              for i, s in enumerate(rng.integers(0, 12, 40))]
    plan = plan_arena(blocks)
    for a in blocks:
        for b in blocks:
            if a.key < b.key and a.first <= b.last and b.first <= a.last:
                oa, ob = plan.offsets[a.key], plan.offsets[b.key]
                assert oa + a.size <= ob or ob + b.size <= oa
    assert all(off % 16 == 0 for off in plan.offsets.values())
    assert plan.size >= peak_live(blocks)


# --- e2e: the package built with this host's gcc ----------------------------------------------

@pytest.mark.e2e
def test_package_has_header_sources_makefile_and_manifest(package):
    require_tool("gcc")
    pkg = package("conv_block", "c-host")
    names = {p.name for p in pkg.path.iterdir()}
    assert {"model.h", "model.c", "kernels.c", "weights.c", "accel_rt.h", "accel_runtime.c",
            "Makefile", "manifest.json"} <= names
    header = (pkg.path / "model.h").read_text()
    assert "int accel_model_run(const float *in_x, float *out_y);" in header
    assert f"#define ACCEL_ARENA_SIZE {pkg.manifest['arena']['size']}u" in header
    assert "malloc" not in (pkg.path / "model.c").read_text()
    manifest = json.loads((pkg.path / "manifest.json").read_text())
    assert manifest["format"] == "accel-c-package" and manifest["inputs"][0]["name"] == "x"
    assert manifest["arena"]["size"] == manifest["arena"]["peak_live"]


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(MICRO_MODELS))
def test_host_build_of_the_c_package_matches_onnxruntime(package, name, tmp_path):
    require_tool("gcc")
    require_tool("make")
    _check_on(package(name, "c-host"), MICRO_MODELS[name](), None, tmp_path)


@pytest.mark.e2e
def test_cli_compile_writes_a_package_and_prints_the_size_report(model_dir, tmp_path, capsys):
    from accel.cli import main

    require_tool("gcc")
    out = tmp_path / "model_c"
    assert main(["compile", str(model_dir / "conv_block.onnx"), "-t", "c-host", "-o", str(out),
                 "-v"]) == 0
    text = capsys.readouterr().out
    assert "kernels" in text and "weights" in text and "arena" in text and "@" in text
    assert (out / "model.c").is_file() and not list(tmp_path.glob(".model_c.*"))


# --- emulated: Cortex-M builds under qemu-system-arm ----------------------------------------

@pytest.mark.emulated
@pytest.mark.parametrize("target, name", [("cortex-m4", "conv_block"),
                                          ("cortex-m4", "ds_cnn_kws"),
                                          ("cortex-m7", "conv_block"),
                                          ("cortex-m7", "mlp_two_inputs"),
                                          ("cortex-m7", "ds_cnn_kws"),
                                          ("cortex-m55", "ds_cnn_kws")])
def test_cortex_m_build_matches_onnxruntime_under_qemu(package, target, name, tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    require_tool("make")
    result = _check_on(package(name, target), MICRO_MODELS[name](), target, tmp_path)
    assert result.instructions and result.instructions > 0
    print(f"{target} {name}: {result.instructions} instructions (QEMU -icount), "
          f"max |diff| {result.max_abs_diff:.2e}")


@pytest.mark.emulated
def test_ds_cnn_runtime_overhead_is_under_2kb_and_arena_is_the_live_peak(package):
    require_tool("arm-none-eabi-gcc")
    pkg = package("ds_cnn_kws", "cortex-m7")
    sizes = pkg.manifest["sizes"]
    assert sizes["parts"]["runtime"]["flash"] < 2048
    assert sizes["parts"]["weights"]["flash"] >= pkg.manifest["report"]["weights_bytes"]
    assert sizes["arena"] == pkg.manifest["arena"]["peak_live"]
    assert sizes["flash"] == sum(p["flash"] for p in sizes["parts"].values())


@pytest.mark.e2e
def test_outputs_that_alias_inputs_or_feed_later_kernels(tmp_path):
    require_tool("gcc")
    require_tool("make")
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Exp", ["r"], ["e"], name="exp"),
             helper.make_node("Reshape", ["x", "shape"], ["flat"], name="view")]
    model = models._model(nodes, [models._vi("x", [2, 3])],
                          [models._vi("r", [2, 3]), models._vi("e", [2, 3]),
                           models._vi("flat", [6])],
                          [numpy_helper.from_array(np.array([6], np.int64), "shape")])
    pkg = accel.compile(model, "c-host", output=tmp_path / "model_c")
    assert "memcpy" in (pkg.path / "model.c").read_text()  # the input view is copied out
    _check_on(pkg, model, None, tmp_path / "work")


@pytest.mark.e2e
def test_torch_module_compiles_to_a_matching_c_package(tmp_path):
    torch = pytest.importorskip("torch")
    require_tool("gcc")
    require_tool("make")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
    x = torch.randn(1, 2, 6, 6)
    pkg = accel.compile(net, "c-host", example_inputs=(x,), output=tmp_path / "model_c")
    with torch.no_grad():
        expected = [net(x).numpy()]
    main_c = harness.check_main(pkg, inputs=[x.numpy()], expected=expected, rtol=RTOL,
                                atol=ATOL)
    result = harness.run_test(harness.build_test(pkg, main_c, work=tmp_path / "work"))
    assert result.returncode == 0, result.output


@pytest.mark.e2e
def test_recompiling_replaces_the_package_and_a_failed_write_keeps_the_old_one(
        tmp_path, monkeypatch):
    from accel.micro import toolchain

    require_tool("gcc")
    out = tmp_path / "model_c"
    accel.compile(models.mlp_two_inputs(), "c-host", output=out)
    first = (out / "model.c").read_text()
    accel.compile(models.conv_block(), "c-host", output=out)
    assert (out / "model.c").read_text() != first

    def fail(*args, **kwargs):
        raise errors.ToolchainError("gcc failed")

    monkeypatch.setattr(toolchain, "compile_objects", fail)
    with pytest.raises(errors.ToolchainError):
        accel.compile(models.mlp_two_inputs(), "c-host", output=out)
    assert "in_x" in (out / "model.c").read_text()  # still the conv_block package
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_c"]


@pytest.mark.unit
def test_a_folder_that_is_not_a_package_is_never_replaced(tmp_path):
    (tmp_path / "model_c").mkdir()
    (tmp_path / "model_c" / "notes.txt").write_text("mine")
    with pytest.raises(errors.UsageError, match="not a C package"):
        accel.compile(models.conv_block(), "c-host", output=tmp_path / "model_c")


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.unit
def test_missing_arm_gcc_names_the_target_and_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(errors.ToolchainError, match="cortex-m7.*arm-none-eabi-gcc.*"
                                                    "gcc-arm-none-eabi"):
        accel.compile(models.conv_block(), "cortex-m7", output=tmp_path / "model_c")
    assert not list(tmp_path.iterdir())


@pytest.mark.e2e
def test_op_without_a_c_kernel_is_named_and_leaves_nothing(tmp_path):
    require_tool("gcc")
    nodes = [helper.make_node("TopK", ["x", "k"], ["y", "i"], name="topk")]
    model = models._model(nodes, [models._vi("x", [1, 8])],
                          [models._vi("y", [1, 2]), models._vi("i", [1, 2], TensorProto.INT64)],
                          [numpy_helper.from_array(np.array([2], np.int64), "k")])
    with pytest.raises(errors.CompileError, match="c-host.*topk.*tvm.contrib.sort.topk"):
        accel.compile(model, "c-host", output=tmp_path / "model_c")
    assert not list(tmp_path.iterdir())


@pytest.mark.unit
def test_workspace_need_is_the_sum_of_a_kernels_allocations():
    from accel.micro.kernels import workspaces

    head = "TVM_DLL int32_t __tvm_ffi_{}(void* self_handle, void* args, int32_t num_args, " \
           "void* result) {{\n"
    source = (head.format("k1") + "  p = TVMBackendAllocWorkspace(1, dev_id, (uint64_t)3200ULL, "
              "2, 32));\n  q = TVMBackendAllocWorkspace(1, dev_id, (uint64_t)10ULL, 2, 32));\n}\n"
              + head.format("k2") + "  return 0;\n}\n")
    assert workspaces(source) == {"k1": 3200 + 16, "k2": 0}


@pytest.mark.unit
def test_kernels_calling_packed_functions_are_rejected_by_name():
    from accel.micro.kernels import _check_symbols

    source = ("TVM_DLL int32_t __tvm_ffi_topk(void* self_handle, void* args, int32_t num_args, "
              'void* result) {\n  TVMFFIEnvModLookupFromImports(ctx, "tvm.contrib.sort.topk", '
              "&f);\n}\n")
    with pytest.raises(errors.CompileError, match="cortex-m4.*'topk'.*tvm.contrib.sort.topk"):
        _check_symbols(source, "cortex-m4")

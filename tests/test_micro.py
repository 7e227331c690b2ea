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


def _check_on(package, name, board, work):
    model = MICRO_MODELS[name]()
    feeds = models.feeds_for(model)
    expected = models.onnxruntime_outputs(model, feeds)
    main_c = harness.test_main(package, list(feeds.values()), expected, rtol=RTOL, atol=ATOL)
    exe = harness.build_test(package, main_c, work, board=board)
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
    _check_on(package(name, "c-host"), name, None, tmp_path)


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
                                          ("cortex-m7", "ds_cnn_kws")])
def test_cortex_m_build_matches_onnxruntime_under_qemu(package, target, name, tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    require_tool("make")
    result = _check_on(package(name, target), name, target, tmp_path)
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


@pytest.mark.emulated
def test_cortex_m55_package_builds_with_helium_flags(package):
    require_tool("arm-none-eabi-gcc")
    pkg = package("conv_block", "cortex-m55")
    assert "-mcpu=cortex-m55" in (pkg.path / "Makefile").read_text()
    assert pkg.manifest["sizes"]["parts"]["kernels"]["flash"] > 0


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

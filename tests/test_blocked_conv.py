"""NCHWc: per-convolution channel blocks, the layout pass's IR, and numerics of blocked convs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import helper, numpy_helper
from tvm import relax
from tvm.script import relax as R

import accel
from accel.blocked_conv import channel_block
from accel.layout import layout_passes
from accel.options import CompileOptions

from . import models

RNG = np.random.default_rng(0)
AVX512 = {"kind": "llvm", "mcpu": "skylake-avx512"}


@pytest.mark.unit
@pytest.mark.parametrize(("channels", "lanes", "expected"), [
    (64, 16, 32), (48, 16, 16), (24, 16, 8), (48, 8, 16), (40, 8, 8), (3, 16, 3), (3, 8, 3),
    (17, 8, None)])
def test_channel_block_prefers_two_vectors_then_one_then_powers_of_two(channels, lanes,
                                                                      expected):
    assert channel_block(channels, lanes) == expected


def _layout(expr, index_map):
    return relax.op.layout_transform(
        expr, index_map=tvm.tirx.IndexMap.from_func(index_map, index_dtype="int32"))


def _dense_then_depthwise(weight, dw_weight):
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 48, 8, 8), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(weight), padding=1))
            y = bb.emit(relax.op.nn.relu(y))
            y = bb.emit(relax.op.nn.conv2d(y, relax.const(dw_weight), strides=2, padding=1,
                                           groups=64))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.passes
def test_nchwc_layout_packs_weights_at_compile_time_and_keeps_activations_blocked():
    weight = RNG.standard_normal((64, 48, 3, 3)).astype(np.float32)
    dw_weight = RNG.standard_normal((64, 1, 3, 3)).astype(np.float32)
    target = tvm.target.Target(AVX512)  # 16 lanes: 48 -> 16-channel blocks, 64 -> 32
    passes = layout_passes("x86-cpu", CompileOptions(desired_layout="NCHWc"), target)
    after = tvm.transform.Sequential(passes)(_dense_then_depthwise(weight, dw_weight))

    # OIHW -> OIHW16i32o and OIHW1i32o, computed with numpy
    packed = weight.reshape(2, 32, 3, 16, 3, 3).transpose(0, 2, 4, 5, 3, 1)
    dw_packed = dw_weight.reshape(2, 32, 1, 1, 3, 3).transpose(0, 2, 4, 5, 3, 1)
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 48, 8, 8), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            xb = bb.emit(_layout(x, lambda n, c, h, w: (n, c // 16, h, w, c % 16)))
            y = bb.emit(relax.op.nn.conv2d(xb, relax.const(np.ascontiguousarray(packed)),
                                           padding=1, data_layout="NCHW16c",
                                           kernel_layout="OIHW16i32o", out_layout="NCHW32c"))
            y = bb.emit(relax.op.nn.relu(y))
            y = bb.emit(relax.op.nn.conv2d(y, relax.const(np.ascontiguousarray(dw_packed)),
                                           strides=2, padding=1, groups=64,
                                           data_layout="NCHW32c", kernel_layout="OIHW1i32o",
                                           out_layout="NCHW32c"))
            out = bb.emit_output(_layout(y, lambda n, c, h, w, b: (n, c * 32 + b, h, w)))
        bb.emit_func_output(out)
    tvm.ir.assert_structural_equal(after, bb.get(), map_free_vars=True)


@pytest.mark.passes
def test_nchwc_layout_leaves_grouped_convs_in_the_model_layout():
    weight = RNG.standard_normal((64, 16, 3, 3)).astype(np.float32)  # 4 groups of 16
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 64, 8, 8), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.conv2d(x, relax.const(weight), groups=4))
        bb.emit_func_output(out)
    before = bb.get()
    passes = layout_passes("x86-cpu", CompileOptions(desired_layout="NCHWc"),
                           tvm.target.Target(AVX512))
    after = tvm.transform.Sequential(passes)(before)
    tvm.ir.assert_structural_equal(after, before)


def _blocked_net() -> onnx.ModelProto:
    """3-channel stem (stride 2), 1x1 expand to 48, 5x5 depthwise (stride 2, dilation 1),
    1x1 project to 24 with a residual, 3x3 dilated conv: blocks of 3, 16/8 and 8 channels."""
    def w(name, shape):
        return numpy_helper.from_array((RNG.standard_normal(shape) * 0.3).astype(np.float32),
                                       name)

    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd"], ["d1"], pads=[2, 2, 2, 2], strides=[2, 2],
                         group=48),
        helper.make_node("Conv", ["d1", "w2", "b2"], ["c2"]),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], pads=[2, 2, 2, 2], dilations=[2, 2]),
        helper.make_node("Add", ["c3", "c2"], ["y"]),
    ]
    weights = [w("w0", (24, 3, 3, 3)), w("b0", (24,)), w("w1", (48, 24, 1, 1)),
               w("wd", (48, 1, 5, 5)), w("w2", (24, 48, 1, 1)), w("b2", (24,)),
               w("w3", (24, 24, 3, 3))]
    graph = helper.make_graph(nodes, "blocked", [models._vi("x", [1, 3, 30, 30])],
                              [models._vi("y", [1, 24, 8, 8])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.e2e
@pytest.mark.parametrize("level", ["O0", "O2"])
def test_nchwc_convs_match_onnxruntime_with_blocked_kernels(level, tmp_path):
    model = _blocked_net()
    path = tmp_path / "blocked.onnx"
    onnx.save(model, path)
    feeds = models.feeds_for(model)
    options = CompileOptions(opt_level=level, desired_layout="NCHWc")
    artifact = accel.compile(path, "host", options=options, output=tmp_path / "m.accel",
                             dump_ir=tmp_path / "ir")
    got = accel.load(artifact.path)(**feeds)
    expected = models.onnxruntime_outputs(model, feeds)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-4)
    dumps = [p.read_text() for p in (tmp_path / "ir").rglob("*") if p.is_file()]
    assert any("def depthwise_conv2d_nchwc" in text for text in dumps)
    assert any("def conv2d_nchwc" in text for text in dumps)


@pytest.mark.e2e
def test_nchwc_on_an_avx2_target_matches_onnxruntime(tmp_path):
    """8 lanes: 16-channel blocks, different tiles; AVX2 code runs on this AVX-512 host."""
    model = _blocked_net()
    onnx.save(model, tmp_path / "blocked.onnx")
    feeds = models.feeds_for(model)
    artifact = accel.compile(tmp_path / "blocked.onnx", "x86-64-avx2",
                             options=CompileOptions(desired_layout="NCHWc"),
                             output=tmp_path / "m.accel")
    got = accel.load(artifact.path)(**feeds)
    np.testing.assert_allclose(got[0], models.onnxruntime_outputs(model, feeds)[0],
                               rtol=1e-4, atol=1e-4)

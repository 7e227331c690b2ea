"""FuseAttention: the attention block becomes one scheduled kernel, and it computes what
onnxruntime computes on a BERT-like encoder layer (attention, GELU feed-forward, LayerNorms)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import helper, numpy_helper
from tvm import relax, te
from tvm.script import relax as R

import accel
from accel.cpu_rules.attention import attention_prim_func
from accel.options import CompileOptions
from accel.passes import FuseAttention

from . import models

RNG = np.random.default_rng(0)
B, H, S, D = 1, 2, 16, 32


def _attention_block(scale_op):
    bb = relax.BlockBuilder()
    q = relax.Var("q", R.Tensor((B, H, S, D), "float32"))
    kt = relax.Var("kt", R.Tensor((B, H, D, S), "float32"))
    v = relax.Var("v", R.Tensor((B, H, S, D), "float32"))
    with bb.function("main", [q, kt, v]):
        with bb.dataflow():
            scores = bb.emit(relax.op.matmul(q, kt))
            scores = bb.emit(scale_op(scores))
            probs = bb.emit(relax.op.nn.softmax(scores, axis=-1))
            out = bb.emit_output(relax.op.matmul(probs, v))
        bb.emit_func_output(out)
    return bb.get()


def _fused_expected(scale):
    holders = [te.placeholder(s, "float32", name=n)
               for s, n in zip([(B, H, S, D), (B, H, D, S), (B, H, S, D)], "qkv", strict=True)]
    bb = relax.BlockBuilder()
    q = relax.Var("q", R.Tensor((B, H, S, D), "float32"))
    kt = relax.Var("kt", R.Tensor((B, H, D, S), "float32"))
    v = relax.Var("v", R.Tensor((B, H, S, D), "float32"))
    with bb.function("main", [q, kt, v]):
        with bb.dataflow():
            func = attention_prim_func(*holders, scale, 16).with_attr("op_pattern", 8)
            gvar = bb.add_func(func, "attention")
            out = bb.emit_output(relax.call_tir(gvar, [q, kt, v],
                                                relax.TensorType((B, H, S, D), "float32")))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.passes
@pytest.mark.parametrize("scale_op", [
    lambda s: relax.op.multiply(s, relax.const(0.25, "float32")),
    lambda s: relax.op.divide(s, relax.const(4.0, "float32"))])
def test_fuse_attention_makes_one_kernel_call(scale_op):
    after = FuseAttention(16)(_attention_block(scale_op))
    tvm.ir.assert_structural_equal(after, _fused_expected(0.25))


@pytest.mark.passes
def test_fuse_attention_leaves_a_negative_scale_alone():
    before = _attention_block(lambda s: relax.op.multiply(s, relax.const(-0.25, "float32")))
    tvm.ir.assert_structural_equal(FuseAttention(16)(before), before)


@pytest.mark.e2e
def test_fused_attention_kernel_matches_numpy():
    holders = [te.placeholder(s, "float32", name=n)
               for s, n in zip([(B, H, S, D), (B, H, D, S), (B, H, S, D)], "qkv", strict=True)]
    func = attention_prim_func(*holders, 0.125, 8)
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                      tvm.target.Target({"kind": "llvm"}))
    q, kt, v = (RNG.standard_normal(s).astype(np.float32) * 3
                for s in [(B, H, S, D), (B, H, D, S), (B, H, S, D)])
    out = tvm.runtime.tensor(np.zeros((B, H, S, D), np.float32))
    lib.mod["main"](*(tvm.runtime.tensor(x) for x in (q, kt, v)), out)
    scores = q @ kt * 0.125
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), probs @ v, rtol=1e-5, atol=1e-5)


def _encoder_layer() -> onnx.ModelProto:
    """One post-LayerNorm BERT layer as torch exports it: Q/K/V projections, head split,
    MatMul, Mul by 1/sqrt(d), Softmax, MatMul, head merge, output projection, erf GELU FFN."""
    hidden = H * D

    def w(name, shape):
        return numpy_helper.from_array((RNG.standard_normal(shape) * 0.2).astype(np.float32),
                                       name)

    def const(name, values, dtype=np.float32):
        return numpy_helper.from_array(np.array(values, dtype=dtype), name)

    nodes = []
    for p in "qkv":
        nodes += [helper.make_node("MatMul", ["x", f"w{p}"], [f"{p}0"]),
                  helper.make_node("Add", [f"{p}0", f"b{p}"], [f"{p}1"]),
                  helper.make_node("Reshape", [f"{p}1", "split"], [f"{p}2"])]
    nodes += [
        helper.make_node("Transpose", ["q2"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k2"], ["kth"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v2"], ["vh"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qh", "kth"], ["sc"]),
        helper.make_node("Mul", ["sc", "scale"], ["scs"]),
        helper.make_node("Softmax", ["scs"], ["pr"], axis=-1),
        helper.make_node("MatMul", ["pr", "vh"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx2"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx2", "merge"], ["ctx3"]),
        helper.make_node("MatMul", ["ctx3", "wo"], ["o0"]),
        helper.make_node("Add", ["o0", "x"], ["r1"]),
        helper.make_node("LayerNormalization", ["r1", "g1", "be1"], ["n1"], axis=-1),
        helper.make_node("MatMul", ["n1", "wf1"], ["f0"]),
        helper.make_node("Add", ["f0", "bf1"], ["f1"]),
        helper.make_node("Div", ["f1", "sqrt2"], ["f2"]),
        helper.make_node("Erf", ["f2"], ["f3"]),
        helper.make_node("Add", ["f3", "one"], ["f4"]),
        helper.make_node("Mul", ["f1", "f4"], ["f5"]),
        helper.make_node("Mul", ["f5", "half"], ["f6"]),
        helper.make_node("MatMul", ["f6", "wf2"], ["f7"]),
        helper.make_node("Add", ["f7", "n1"], ["y"]),
    ]
    weights = [w(f"w{p}", (hidden, hidden)) for p in "qkv"] + \
        [w(f"b{p}", (hidden,)) for p in "qkv"] + \
        [const("split", [1, S, H, D], np.int64), const("merge", [1, S, hidden], np.int64),
         const("scale", 1 / np.sqrt(D)), w("wo", (hidden, hidden)), w("g1", (hidden,)),
         w("be1", (hidden,)), w("wf1", (hidden, 4 * hidden)), w("bf1", (4 * hidden,)),
         const("sqrt2", np.sqrt(2)), const("one", 1.0), const("half", 0.5),
         w("wf2", (4 * hidden, hidden))]
    graph = helper.make_graph(nodes, "encoder", [models._vi("x", [1, S, hidden])],
                              [models._vi("y", [1, S, hidden])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.e2e
@pytest.mark.parametrize("level", ["O0", "O2"])
def test_encoder_layer_attention_is_fused_and_matches_onnxruntime(level, tmp_path):
    model = _encoder_layer()
    onnx.save(model, tmp_path / "enc.onnx")
    feeds = models.feeds_for(model)
    artifact = accel.compile(tmp_path / "enc.onnx", "host", output=tmp_path / "m.accel",
                             options=CompileOptions(opt_level=level), dump_ir=tmp_path / "ir")
    got = accel.load(artifact.path)(**feeds)
    np.testing.assert_allclose(got[0], models.onnxruntime_outputs(model, feeds)[0],
                               rtol=1e-4, atol=1e-4)
    fused = any("def attention(" in p.read_text() for p in (tmp_path / "ir").rglob("*")
                if p.is_file())
    assert fused == (level != "O0")  # the attention phase runs from O1
    if level != "O0":
        unfused = accel.compile(tmp_path / "enc.onnx", "host", output=tmp_path / "u.accel",
                                options=CompileOptions(disabled_passes=("accel.FuseAttention",)))
        report, plain = artifact.manifest["report"], unfused.manifest["report"]
        assert report["kernels"] < plain["kernels"]


@pytest.mark.e2e
def test_the_fused_attention_kernel_cross_compiles_for_aarch64(tmp_path):
    from .conftest import require_tool

    require_tool("aarch64-linux-gnu-g++")
    onnx.save(_encoder_layer(), tmp_path / "enc.onnx")
    artifact = accel.compile(tmp_path / "enc.onnx", "aarch64-linux", output=tmp_path / "a.accel",
                             dump_ir=tmp_path / "ir")
    assert artifact.path.is_file()
    assert any("def attention(" in p.read_text() for p in (tmp_path / "ir").rglob("*")
               if p.is_file())

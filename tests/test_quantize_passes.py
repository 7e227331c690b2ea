"""Before/Expected IR for the int8 passes: InsertQDQ and LowerQDQToInteger."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import relax as R

from accel.passes import InsertQDQ, LowerQDQToInteger
from accel.passes.insert_qdq import SiteQuant, dequantized_weight, qdq

pytestmark = pytest.mark.passes

RNG = np.random.default_rng(0)
W = RNG.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
SW = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
SX, SY = 0.05, 0.1
BIAS = np.array([0.1, -0.2, 0.3, -0.4], np.float32)
CONV = {"padding": (1, 1, 1, 1)}


def _x():
    return relax.Var("x", R.Tensor((1, 3, 8, 8), "float32"))


def _float_conv():
    bb, x = relax.BlockBuilder(), _x()
    with bb.function("main", [x]):
        with bb.dataflow():
            c = bb.emit(relax.op.nn.conv2d(x, relax.const(W.astype(np.float32)), **CONV))
            out = bb.emit_output(c)
        bb.emit_func_output(out)
    return bb.get()


def test_insert_qdq_quantizes_the_inputs_of_a_listed_site():
    after = InsertQDQ({"conv2d_0": SiteQuant((( SX, "int8"),), W, SW)})(_float_conv())
    bb, x = relax.BlockBuilder(), _x()
    with bb.function("main", [x]):
        with bb.dataflow():
            dx = qdq(bb, x, SX, "int8")
            dw = dequantized_weight(bb, W, SW, 0)
            c = bb.emit(relax.op.nn.conv2d(dx, dw, **CONV))
            out = bb.emit_output(c)
        bb.emit_func_output(out)
    tvm.ir.assert_structural_equal(after, bb.get())


def test_insert_qdq_leaves_unlisted_sites_alone():
    before = _float_conv()
    tvm.ir.assert_structural_equal(InsertQDQ({})(before), before)


def _qdq_conv_bias_relu_quantize(relu6: bool = False):
    """What InsertQDQ (or onnxruntime's QDQ format) leaves: dq -> conv -> +bias -> relu -> q."""
    bb, x = relax.BlockBuilder(), _x()
    with bb.function("main", [x]):
        with bb.dataflow():
            dx = qdq(bb, x, SX, "int8")
            dw = dequantized_weight(bb, W, SW, 0)
            c = bb.emit(relax.op.nn.conv2d(dx, dw, **CONV))
            b = bb.emit(relax.op.add(c, relax.const(BIAS.reshape(1, 4, 1, 1))))
            r = bb.emit(relax.op.clip(b, 0.0, 0.5) if relu6 else relax.op.nn.relu(b))
            q = bb.emit(relax.op.quantize(r, relax.const(np.float32(SY)),
                                          relax.const(0, "uint8"), out_dtype="uint8"))
            out = bb.emit_output(q)
        bb.emit_func_output(out)
    return bb.get()


def _clamp(bb, value, lo, hi, dtype):
    value = bb.emit(relax.op.maximum(value, relax.const(np.float32(lo))))
    value = bb.emit(relax.op.minimum(value, relax.const(np.float32(hi))))
    return relax.op.astype(value, dtype)


def test_lower_qdq_to_integer_makes_an_int8_conv_with_int32_bias_and_requantize():
    after = LowerQDQToInteger()(_qdq_conv_bias_relu_quantize())
    scale = SX * SW.astype(np.float64)
    bias = np.round(BIAS / scale).astype(np.int32)
    bb, x = relax.BlockBuilder(), _x()
    with bb.function("main", [x]):
        with bb.dataflow():
            qx = bb.emit(relax.op.round(bb.emit(relax.op.divide(x, relax.const(np.float32(SX))))))
            qx = bb.emit(_clamp(bb, qx, -128, 127, "int8"))
            acc = bb.emit(relax.op.nn.conv2d(qx, relax.const(W), **CONV, out_dtype="int32"))
            acc = bb.emit(relax.op.add(acc, relax.const(bias.reshape(1, 4, 1, 1))))
            f = bb.emit(relax.op.astype(acc, "float32"))
            v = bb.emit(relax.op.multiply(
                f, relax.const((scale / SY).astype(np.float32).reshape(1, 4, 1, 1))))
            v = bb.emit(relax.op.round(v))
            v = bb.emit(_clamp(bb, v, 0, 255, "uint8"))
            out = bb.emit_output(v)
        bb.emit_func_output(out)
    tvm.ir.assert_structural_equal(after, bb.get())


@pytest.mark.parametrize("relu6", [False, True])
def test_lower_qdq_to_integer_computes_what_the_float_graph_computes(relu6):
    before = _qdq_conv_bias_relu_quantize(relu6)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    target = tvm.target.Target({"kind": "llvm"})
    results = []
    after = LowerQDQToInteger()(before)
    assert "R.nn.relu" not in after.script() and "R.dequantize" not in after.script()
    assert "R.clip(" not in after.script() and "R.quantize(" not in after.script()
    for mod in (before, after):
        vm = relax.VirtualMachine(tvm.compile(mod, target), tvm.cpu())
        results.append(vm["main"](tvm.runtime.tensor(x)).numpy().astype(np.int32))
    # the integer path rounds the bias to int32 and rescales once: at most one step apart
    assert np.abs(results[0] - results[1]).max() <= 1
    assert np.mean(results[0] != results[1]) < 0.02


def test_lower_qdq_to_integer_pads_a_nonzero_zero_point_and_corrects_it():
    bb, x = relax.BlockBuilder(), _x()
    with bb.function("main", [x]):
        with bb.dataflow():
            s, z = relax.const(np.float32(SX)), relax.const(128, "uint8")
            q = bb.emit(relax.op.quantize(x, s, z, out_dtype="uint8"))
            dx = bb.emit(relax.op.dequantize(q, s, z))
            c = bb.emit(relax.op.nn.conv2d(dx, dequantized_weight(bb, W, SW, 0), **CONV))
            out = bb.emit_output(c)
        bb.emit_func_output(out)
    before = bb.get()
    after = LowerQDQToInteger()(before)
    assert "R.nn.pad(" in after.script() and 'out_dtype="int32"' in after.script()
    data = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    target = tvm.target.Target({"kind": "llvm"})
    got = [relax.VirtualMachine(tvm.compile(m, target), tvm.cpu())["main"](
        tvm.runtime.tensor(data)).numpy() for m in (before, after)]
    np.testing.assert_allclose(got[1], got[0], rtol=1e-5, atol=1e-5)


def test_lower_qdq_to_integer_leaves_a_float_module_unchanged():
    before = _float_conv()
    assert LowerQDQToInteger()(before).same_as(before)


def test_insert_qdq_gives_a_residual_add_the_quantized_input():
    bb, x = relax.BlockBuilder(), _x()
    w = relax.const(RNG.standard_normal((3, 3, 3, 3)).astype(np.float32))
    with bb.function("main", [x]):
        with bb.dataflow():
            c = bb.emit(relax.op.nn.conv2d(x, w, **CONV))
            out = bb.emit_output(bb.emit(relax.op.add(c, x)))
        bb.emit_func_output(out)
    wq, sw = W[:3, :3], SW[:3]
    after = InsertQDQ({"conv2d_0": SiteQuant(((SX, "int8"),), wq, sw)})(bb.get())
    bb, x = relax.BlockBuilder(), _x()
    with bb.function("main", [x]):
        with bb.dataflow():
            dx = qdq(bb, x, SX, "int8")
            c = bb.emit(relax.op.nn.conv2d(dx, dequantized_weight(bb, wq, sw, 0), **CONV))
            out = bb.emit_output(bb.emit(relax.op.add(c, dx)))
        bb.emit_func_output(out)
    tvm.ir.assert_structural_equal(after, bb.get())

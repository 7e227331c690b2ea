"""Before/Expected IR for accel's own Relax passes (accel/passes/)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax, topi
from tvm.script import relax as R

from accel.passes import FoldBatchNormIntoConv, FoldSimpleConstants, LiftScalarMinMax

pytestmark = pytest.mark.passes

RNG = np.random.default_rng(0)


def _clip_as_the_onnx_importer_writes_it():
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 8, 4, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            lo = bb.emit_te(topi.maximum, x, relax.const(0.0, "float32"))
            hi = bb.emit_te(topi.minimum, lo, relax.const(6.0, "float32"))
            out = bb.emit_output(hi)
        bb.emit_func_output(out)
    return bb.get()


def test_lift_scalar_min_max_turns_clip_kernels_into_relax_ops():
    @tvm.script.ir_module
    class Expected:
        @R.function
        def main(x: R.Tensor((1, 8, 4, 4), "float32")) -> R.Tensor((1, 8, 4, 4), "float32"):
            with R.dataflow():
                lo = R.maximum(x, R.const(0.0, "float32"))
                hi = R.minimum(lo, R.const(6.0, "float32"))
                gv = hi
                R.output(gv)
            return gv

    after = tvm.transform.Sequential([LiftScalarMinMax(), relax.transform.DeadCodeElimination()])(
        _clip_as_the_onnx_importer_writes_it())
    tvm.ir.assert_structural_equal(after, Expected)


def test_lift_scalar_min_max_leaves_tensor_maximum_alone():
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((4,), "float32"))
    y = relax.Var("y", R.Tensor((4,), "float32"))
    with bb.function("main", [x, y]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit_te(topi.maximum, x, y))
        bb.emit_func_output(out)
    before = bb.get()
    tvm.ir.assert_structural_equal(LiftScalarMinMax()(before), before)


def _conv_then(chain, *, weight, extra_use=False):
    """conv2d(x, weight) followed by (op, constant) steps; optionally a second use of the conv."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 3, 6, 6), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            value = conv = bb.emit(relax.op.nn.conv2d(x, relax.const(weight), padding=1))
            for op, const in chain:
                value = bb.emit(op(value, relax.const(const)))
            outputs = (value, conv) if extra_use else (value,)
            out = bb.emit_output(relax.Tuple(outputs) if extra_use else value)
        bb.emit_func_output(out)
    return bb.get()


def test_fold_batch_norm_into_conv_gives_scaled_weights_and_one_bias():
    weight = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    mean, std, gamma, beta = (RNG.standard_normal((1, 4, 1, 1)).astype(np.float32) + 2
                              for _ in range(4))
    chain = [(relax.op.subtract, mean), (relax.op.divide, std), (relax.op.multiply, gamma),
             (relax.op.add, beta)]
    # The pass composes y = conv * scale + shift step by step in float64, rounding once.
    m, s, g, b = (v.ravel().astype(np.float64) for v in (mean, std, gamma, beta))
    scale = np.ones(4) / s * g
    shift = (np.zeros(4) - m) / s * g + b
    expected = _conv_then([(relax.op.add, shift.reshape(1, 4, 1, 1).astype(np.float32))],
                          weight=(weight * scale.reshape(4, 1, 1, 1)).astype(np.float32))
    after = tvm.transform.Sequential([FoldBatchNormIntoConv(),
                                      relax.transform.DeadCodeElimination()])(
        _conv_then(chain, weight=weight))
    tvm.ir.assert_structural_equal(after, expected)


def test_fold_batch_norm_into_conv_keeps_a_conv_that_is_used_twice():
    weight = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    before = _conv_then([(relax.op.multiply, np.full((1, 4, 1, 1), 2, np.float32))],
                        weight=weight, extra_use=True)
    tvm.ir.assert_structural_equal(FoldBatchNormIntoConv()(before), before)


def test_fold_batch_norm_into_conv_ignores_constants_that_vary_over_space():
    weight = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    before = _conv_then([(relax.op.add, RNG.standard_normal((1, 4, 6, 6)).astype(np.float32))],
                        weight=weight)
    tvm.ir.assert_structural_equal(FoldBatchNormIntoConv()(before), before)


def test_fold_simple_constants_evaluates_batch_norm_and_layout_arithmetic():
    var = RNG.random(4).astype(np.float32)
    weight = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            std = bb.emit(relax.op.sqrt(relax.op.add(relax.const(var),
                                                     relax.const(np.float32(1e-5)))))
            col = bb.emit(relax.op.expand_dims(std, axis=[0]))
            hwio = bb.emit(relax.op.permute_dims(relax.const(weight), axes=[2, 3, 1, 0]))
            out = bb.emit_output(relax.Tuple([relax.op.divide(x, col), hwio]))
        bb.emit_func_output(out)
    after = FoldSimpleConstants()(bb.get())

    folded_col = np.expand_dims(np.sqrt(var + np.float32(1e-5)), 0)
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor((1, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            bb.emit(relax.const(var + np.float32(1e-5)))  # the builder binds the inner add
            bb.emit(relax.const(np.sqrt(var + np.float32(1e-5))))
            bb.emit(relax.const(folded_col))
            hwio = bb.emit(relax.const(np.ascontiguousarray(weight.transpose(2, 3, 1, 0))))
            out = bb.emit_output(relax.Tuple([relax.op.divide(x, relax.const(folded_col)),
                                              hwio]))
        bb.emit_func_output(out)
    tvm.ir.assert_structural_equal(after, bb.get())

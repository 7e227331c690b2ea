"""Weight-only quantization: Before/Expected IR of QuantizeMatmulWeights, the group-wise packing,
and the dequantizing matmul kernel against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import relax as R

from accel.passes import QuantizeMatmulWeights
from accel.quantize.packing import (
    block_columns,
    dequant_matmul_te,
    dequantize,
    quantize_groupwise,
    unblock_columns,
)

pytestmark = pytest.mark.passes

RNG = np.random.default_rng(0)


def _matmul_add(weight: np.ndarray, x_shape=(1, 64)):
    """main(x) = matmul(x, W) + 1, with W a constant."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor(x_shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.matmul(x, relax.const(weight)))
            out = bb.emit_output(relax.op.add(y, relax.const(1.0, "float32")))
        bb.emit_func_output(out)
    return bb.get()


def _expected(weight: np.ndarray, bits: int, group_size: int, x_shape=(1, 64)):
    """The same function calling the dequantizing kernel on the packed weight and scales."""
    packed, scales = quantize_groupwise(weight, bits, group_size)
    bb = relax.BlockBuilder()
    x = relax.Var("x", R.Tensor(x_shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_te(dequant_matmul_te, x, relax.const(packed), relax.const(scales),
                           bits=bits, group_size=group_size,
                           primfunc_name_hint=f"int{bits}_matmul")
            out = bb.emit_output(relax.op.add(y, relax.const(1.0, "float32")))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_matmul_weights_calls_one_dequantizing_kernel_on_packed_weights(bits):
    weight = RNG.standard_normal((64, 32)).astype(np.float32)
    after = QuantizeMatmulWeights(bits, 16)(_matmul_add(weight))
    tvm.ir.assert_structural_equal(after, _expected(weight, bits, 16))
    storage = {"int8", "uint8"} & {str(c.value.dtype) for c in _constants(after)}
    assert storage == {"int8" if bits == 8 else "uint8"}


def test_quantize_matmul_weights_blocks_the_columns_when_the_block_divides_them():
    weight = RNG.standard_normal((64, 32)).astype(np.float32)
    after = QuantizeMatmulWeights(8, 16, block=16)(_matmul_add(weight))
    (packed,) = [c.value.numpy() for c in _constants(after) if str(c.value.dtype) == "int8"]
    assert packed.shape == (2, 64, 16)
    assert np.array_equal(unblock_columns(packed), quantize_groupwise(weight, 8, 16)[0])
    odd = QuantizeMatmulWeights(8, 16, block=24)(_matmul_add(weight))  # 24 does not divide 32
    tvm.ir.assert_structural_equal(odd, _expected(weight, 8, 16))


def test_quantize_matmul_weights_for_gpus_decodes_in_a_prologue_block():
    from tvm import s_tir

    weight = RNG.standard_normal((64, 32)).astype(np.float32)
    after = QuantizeMatmulWeights(4, 16, block=16, prologue=True)(_matmul_add(weight))
    kernel = next(f for gv, f in after.functions_items() if gv.name_hint == "int4_matmul")
    sch = s_tir.Schedule(kernel)
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    assert names == ["int4_decode", "int4_matmul"]
    packed = [c.value.numpy() for c in _constants(after) if str(c.value.dtype) == "uint8"]
    assert packed[0].shape == (32, 32)  # the plain layout: no column blocks on GPUs


def test_quantize_matmul_weights_keeps_batch_axes():
    weight = RNG.standard_normal((64, 48)).astype(np.float32)
    after = QuantizeMatmulWeights(8, 32)(_matmul_add(weight, (2, 5, 64)))
    tvm.ir.assert_structural_equal(after, _expected(weight, 8, 32, (2, 5, 64)))


def test_quantize_matmul_weights_survives_fold_constant():
    weight = RNG.standard_normal((64, 32)).astype(np.float32)
    after = relax.transform.FoldConstant()(QuantizeMatmulWeights(4, 32)(_matmul_add(weight)))
    dtypes = sorted(str(c.value.dtype) for c in _constants(after))
    assert dtypes == ["float32", "float32", "uint8"]  # scales, the 1.0, packed weights


def test_quantize_matmul_weights_leaves_other_matmuls_alone():
    bb = relax.BlockBuilder()
    a = relax.Var("a", R.Tensor((4, 8), "float32"))
    b = relax.Var("b", R.Tensor((8, 6), "float32"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.matmul(a, b))  # weight is an input, not a constant
        bb.emit_func_output(out)
    activations = bb.get()
    tvm.ir.assert_structural_equal(QuantizeMatmulWeights(8, 4)(activations), activations)


def test_int4_with_an_odd_input_count_stays_unblocked():
    weight = RNG.standard_normal((63, 16)).astype(np.float32)
    after = QuantizeMatmulWeights(4, 16, block=16)(_matmul_add(weight, (1, 63)))
    tvm.ir.assert_structural_equal(after, _expected(weight, 4, 16, (1, 63)))


def _constants(mod):
    found = []
    relax.analysis.post_order_visit(
        mod["main"], lambda e: isinstance(e, tvm.ir.GenericConst) and found.append(e))
    return found


@pytest.mark.parametrize("bits,qmax", [(8, 127), (4, 7)])
def test_groupwise_scales_are_group_absmax_over_qmax_and_errors_within_half_a_step(bits, qmax):
    k, n, group = 100, 12, 32  # 100 = 3 full groups + a ragged group of 4
    weight = RNG.standard_normal((k, n)).astype(np.float32)
    packed, scales = quantize_groupwise(weight, bits, group)
    assert packed.shape == ((k, n) if bits == 8 else (k // 2, n))
    assert scales.shape == (4, n) and scales.dtype == np.float32
    for g in range(4):
        rows = weight[g * group:(g + 1) * group]
        np.testing.assert_allclose(scales[g], np.abs(rows).max(axis=0) / qmax, rtol=1e-6)
    step = np.repeat(scales, group, axis=0)[:k]
    error = np.abs(dequantize(packed, scales, bits, group, k) - weight)
    assert np.all(error <= step / 2 * (1 + 1e-5))


def test_int4_packs_two_channels_per_byte_low_nibble_first():
    weight = np.array([[7.0], [-7.0], [0.0], [3.0]], np.float32)  # one group: scale 1
    packed, scales = quantize_groupwise(weight, 4, 4)
    assert scales[0, 0] == 1.0
    assert packed[:, 0].tolist() == [(7 + 8) | ((-7 + 8) << 4), (0 + 8) | ((3 + 8) << 4)]


def test_column_blocks_make_each_block_of_outputs_contiguous():
    packed = np.arange(6 * 8, dtype=np.int32).reshape(6, 8)
    blocked = block_columns(packed, 4)
    assert blocked.shape == (2, 6, 4)
    assert blocked[1].tolist() == packed[:, 4:8].tolist()
    assert np.array_equal(unblock_columns(blocked), packed)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("x_shape,block,prologue", [
    ((1, 96), 1, False), ((3, 4, 96), 1, False), ((1, 96), 8, False), ((2, 96), 40, False),
    ((1, 95), 1, False), ((1, 96), 1, True), ((2, 95), 1, True)])
def test_dequantizing_kernel_matches_numpy_on_the_dequantized_weight(bits, x_shape, block,
                                                                     prologue):
    from tvm import te

    k, n, group = x_shape[-1], 40, 64  # a ragged last group (96 = 64 + 32); 95: odd for int4
    weight = RNG.standard_normal((k, n)).astype(np.float32)
    packed, scales = quantize_groupwise(weight, bits, group)
    packed = block_columns(packed, block) if block > 1 else packed
    x = te.placeholder(x_shape, "float32", "x")
    p = te.placeholder(packed.shape, str(packed.dtype), "p")
    s = te.placeholder(scales.shape, "float32", "s")
    out = dequant_matmul_te(x, p, s, bits=bits, group_size=group, prologue=prologue)
    func = tvm.compile(te.create_prim_func([x, p, s, out]), target="llvm")
    data = RNG.standard_normal(x_shape).astype(np.float32)
    result = tvm.runtime.tensor(np.zeros((*x_shape[:-1], n), np.float32))
    func(*(tvm.runtime.tensor(a) for a in (data, packed, scales)), result)
    expected = data @ dequantize(packed, scales, bits, group, k)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5, atol=1e-4)

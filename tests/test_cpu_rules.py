"""accel's default CPU schedule rules (accel/cpu_rules/): what they produce, and that it computes
the same numbers as numpy on shapes that do not divide the tiles."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import te, topi

from accel.cpu_rules import Contraction, Injective

AVX2 = {"kind": "llvm", "mcpu": "haswell"}
AVX512 = {"kind": "llvm", "mcpu": "skylake-avx512"}
NEON = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]}
ARMV7 = {"kind": "llvm", "mtriple": "armv7a-linux-gnueabihf", "mattr": ["+neon", "+vfp4"]}


def _dense_bias_relu(m=64, k=32, n=64):
    a = te.placeholder((m, k), name="a")
    w = te.placeholder((k, n), name="w")
    b = te.placeholder((n,), name="b")
    r = te.reduce_axis((0, k), name="r")
    mm = te.compute((m, n), lambda i, j: te.sum(a[i, r] * w[r, j], axis=r), name="mm")
    out = topi.nn.relu(topi.add(mm, b))
    return te.create_prim_func([a, w, b, out])


def _depthwise_nhwc(h=9, c=24):
    x = te.placeholder((1, h, h, c), name="x")
    w = te.placeholder((3, 3, 1, c), name="w")
    return te.create_prim_func([x, w, topi.nn.conv(x, w, 1, 1, 1, c, "NHWC", "HWIO")])


def _max_pool_nhwc(h=10, c=16):
    x = te.placeholder((1, h, h, c), name="x")
    return te.create_prim_func([x, topi.nn.pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1),
                                                  "max", layout="NHWC")])


def _blocked_conv(ic_chunks=8, hw=6, depthwise=False):
    """An NCHW32c conv (8 input blocks) with relu; depthwise, a 5x5 stride 2 one."""
    from accel.blocked_conv import conv2d_nchwc, depthwise_conv2d_nchwc

    x = te.placeholder((1, ic_chunks, hw, hw, 32), name="x")
    if depthwise:
        w = te.placeholder((ic_chunks, 1, 5, 5, 1, 32), name="w")
        y = depthwise_conv2d_nchwc(x, w, (2, 2), (2, 2, 2, 2), (1, 1))
    else:
        w = te.placeholder((2, ic_chunks, 3, 3, 32, 32), name="w")
        y = conv2d_nchwc(x, w, (1, 1), (1, 1, 1, 1), (1, 1))
    return te.create_prim_func([x, w, topi.nn.relu(y)])


def _scheduled(rule, func, target):
    target = tvm.target.Target(target)
    sch = rule.apply(func, target, False)
    assert sch is not None
    return sch.mod["main"]


@pytest.mark.passes
# Output-channel tile: 2 registers on AVX2 / AVX-512 / armv7 (16 registers), 4 on AArch64 (32).
@pytest.mark.parametrize("target,tile", [(AVX2, 16), (AVX512, 32), (NEON, 16), (ARMV7, 8)])
def test_contraction_tiles_vectorizes_and_parallelizes_a_dense_layer(target, tile):
    text = _scheduled(Contraction(), _dense_bias_relu(), target).script()
    assert "T.parallel" in text
    assert f"T.vectorized({tile})" in text
    assert text.count("T.unroll") >= 1


@pytest.mark.passes
def test_contraction_keeps_the_epilogue_in_the_register_tile():
    func = _scheduled(Contraction(), _dense_bias_relu(), AVX2)
    # One loop nest under the root: bias + relu run inside the tile loops, not after them.
    root = func.body.block.body
    assert not isinstance(root, tvm.tirx.SeqStmt), func.script()


@pytest.mark.passes
def test_injective_rule_declines_kernels_with_a_reduction():
    assert Injective().apply(_dense_bias_relu(), tvm.target.Target(AVX2), False) is None


@pytest.mark.e2e
@pytest.mark.parametrize("build", [lambda: _dense_bias_relu(5, 7, 13), lambda: _dense_bias_relu(),
                                   _depthwise_nhwc, _max_pool_nhwc, _blocked_conv,
                                   lambda: _blocked_conv(2, 9, depthwise=True)])
def test_contraction_schedules_compute_what_the_plain_loops_compute(build):
    func = build()
    target = tvm.target.Target({"kind": "llvm"})
    plain = tvm.compile(func, target)
    tuned = tvm.compile(_scheduled(Contraction(), func, target), target)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal([int(d) for d in buf.shape]).astype("float32")
            for buf in func.params]
    out_plain, out_tuned = ([tvm.runtime.tensor(a) for a in args] for _ in range(2))
    plain(*out_plain)
    tuned(*out_tuned)
    np.testing.assert_allclose(out_tuned[-1].numpy(), out_plain[-1].numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.e2e
def test_contraction_compiles_for_aarch64_and_armv7():
    for target in (NEON, ARMV7):
        func = _scheduled(Contraction(), _dense_bias_relu(), target)
        assert tvm.compile(func, tvm.target.Target(target)) is not None


def _sum_last_axis():
    x = te.placeholder((8, 32), name="x")
    return te.create_prim_func([x, topi.sum(x, axis=1)])


def _symbolic_matmul():
    n = te.var("n")
    a = te.placeholder((n, 16), name="a")
    w = te.placeholder((16, 16), name="w")
    return te.create_prim_func([a, w, topi.matmul(a, w)])


@pytest.mark.passes
@pytest.mark.parametrize("build", [_sum_last_axis, _symbolic_matmul])
def test_contraction_declines_gathers_and_symbolic_shapes(build):
    assert Contraction().apply(build(), tvm.target.Target(AVX2), False) is None


@pytest.mark.unit
@pytest.mark.parametrize("rows,channels,isa,expected", [
    (56, 64, "avx2", (16, 4)),      # 4 x 2 accumulators + 2 weights + 1 broadcast of 16
    (7, 512, "avx2", (16, 7)),      # no fitting row count divides 7: weights from memory
    (56, 64, "avx512", (32, 14)),   # 32 registers
    (14, 256, "neon64", (8, 14)),   # AArch64 FMAs read registers only: 4 x 7 would spill
    (1, 1000, "avx512", (8, 1)),    # 1000 = 8 x 125: half vectors
])
def test_register_tile_fits_the_register_file(rows, channels, isa, expected):
    from accel.cpu_rules.tiles import pick_tile

    lanes, registers, vectors, memory = {"avx2": (8, 16, 2, True), "avx512": (16, 32, 2, True),
                                         "neon64": (4, 32, 4, False)}[isa]
    assert pick_tile(channels, rows, lanes=lanes, registers=registers, vectors=vectors,
                     memory_operand=memory) == expected


@pytest.mark.parametrize("op", ["Cosh", "Sinh"])
def test_injective_keeps_intrinsics_llvm_cannot_vectorize_scalar(op, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    import accel

    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 64]) for n in "xy"]
    model = helper.make_model(helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g",
                                                 vi[:1], vi[1:]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    module = accel.load(accel.compile(model, output=tmp_path / "m.accel").path)
    np.testing.assert_allclose(module(x)[0], getattr(np, op.lower())(x), rtol=1e-5, atol=1e-6)

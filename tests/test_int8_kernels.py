"""The int8 conv2d and matmul kernels (PackInt8Contractions + Int8Contraction): exact int32
results against numpy for each kernel kind, and the dot-product instruction in the assembly
(VNNI on this host, vpmaddwd for x86-64-avx2, sdot for an AArch64 dot-product target)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from accel.compiler import _timed_pipeline
from accel.options import CompileOptions
from accel.pipeline import build_passes
from accel.target import get_target, host_cpu_flags

_RANGE = {"uint8": (0, 256), "int8": (-128, 128)}
_VNNI = "avx512_vnni" in host_cpu_flags()


def _build(mod, target_name: str):
    spec = get_target(target_name)
    target = spec.tvm_target()
    with target:
        phases = build_passes(spec, target, CompileOptions())
    with tvm.transform.PassContext(opt_level=3):
        return tvm.compile(mod, target, relax_pipeline=_timed_pipeline(phases, target, []))


def _function(x_shape, x_dtype, body):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, x_dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(body(bb, x))
        bb.emit_func_output(out)
    return bb.get()


def _conv(x_dtype, *, h, cin, cout, k, stride, pad, groups=1, seed=0):
    """conv2d (NHWC, constant int8 HWIO weight) -> int32, + bias, relu: module and reference."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (k, k, cin // groups, cout)).astype("int8")
    bias = rng.integers(-5000, 5000, (cout,)).astype("int32")

    def body(bb, x):
        y = bb.emit(relax.op.nn.conv2d(x, relax.const(w), strides=stride, padding=pad,
                                       groups=groups, data_layout="NHWC",
                                       kernel_layout="HWIO", out_dtype="int32"))
        return relax.op.nn.relu(relax.op.add(y, relax.const(bias)))

    def reference(x):
        out = _numpy_conv(x.astype(np.int64), w.astype(np.int64), stride, pad, groups)
        return np.maximum(out + bias, 0)

    return _function((1, h, h, cin), x_dtype, body), reference


def _numpy_conv(x, w, stride, pad, groups):
    """Direct NHWC / HWIO grouped convolution in int64."""
    k, cin_g, cout = w.shape[0], w.shape[2], w.shape[3]
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh = (x.shape[1] - k) // stride + 1
    cout_g = cout // groups
    out = np.zeros((1, oh, oh, cout), np.int64)
    for g in range(groups):
        xs = x[..., g * cin_g:(g + 1) * cin_g]
        ws = w[..., g * cout_g:(g + 1) * cout_g]
        for i in range(k):
            for j in range(k):
                patch = xs[:, i:i + stride * oh:stride, j:j + stride * oh:stride]
                out[..., g * cout_g:(g + 1) * cout_g] += patch @ ws[i, j]
    return out


def _matmul(x_dtype, shape, n, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (shape[-1], n)).astype("int8")

    def body(bb, x):
        return relax.op.matmul(x, relax.const(w), out_dtype="int32")

    return _function(shape, x_dtype, body), lambda x: x.astype(np.int64) @ w.astype(np.int64)


_CASES = {
    "conv3x3": lambda dt: _conv(dt, h=9, cin=32, cout=32, k=3, stride=1, pad=1),
    "conv1x1": lambda dt: _conv(dt, h=8, cin=16, cout=64, k=1, stride=1, pad=0),
    "conv_stem_3_channels": lambda dt: _conv(dt, h=11, cin=3, cout=16, k=3, stride=2, pad=1),
    "depthwise": lambda dt: _conv(dt, h=9, cin=32, cout=32, k=3, stride=1, pad=1, groups=32),
    "grouped": lambda dt: _conv(dt, h=8, cin=16, cout=32, k=3, stride=1, pad=1, groups=2),
    "matmul": lambda dt: _matmul(dt, (5, 40), 48),
    "batch_matmul": lambda dt: _matmul(dt, (2, 3, 64), 32),
}


@pytest.mark.e2e
@pytest.mark.parametrize("target", ["host", "x86-64-avx2"])
@pytest.mark.parametrize("x_dtype", ["uint8", "int8"])
@pytest.mark.parametrize("case", sorted(_CASES))
def test_int8_kernel_is_exact_against_numpy(case, x_dtype, target):
    mod, reference = _CASES[case](x_dtype)
    vm = relax.VirtualMachine(_build(mod, target), tvm.cpu())
    shape = [int(d) for d in mod["main"].params[0].ty.shape]
    x = np.random.default_rng(1).integers(*_RANGE[x_dtype], shape).astype(x_dtype)
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, reference(x))


def _asm(target_name: str, x_dtype: str, case: str = "conv3x3") -> str:
    mod, _ = _CASES[case](x_dtype)
    return _build(mod, target_name).mod.imports[0].inspect_source("asm")


@pytest.mark.e2e
@pytest.mark.parametrize("target,instruction", [
    pytest.param("host", "vpdpbusd", marks=pytest.mark.skipif(
        not _VNNI, reason="this host has no AVX-512 VNNI")),
    ("x86-64-avx512", "vpmaddwd"),  # Skylake-SP: no VNNI
    ("x86-64-avx2", "vpmaddwd"),
    ("rpi5", "sdot"),
])
@pytest.mark.parametrize("x_dtype", ["uint8", "int8"])
@pytest.mark.parametrize("case", ["conv3x3", "matmul"])
def test_int8_kernel_uses_the_dot_product_instruction(target, instruction, x_dtype, case):
    asm = _asm(target, x_dtype, case)
    assert instruction in asm
    assert "vpmulld" not in asm  # no int32 multiplies left in the inner loop


@pytest.mark.e2e
def test_aarch64_without_dot_product_keeps_the_generic_int8_kernel():
    asm = _asm("aarch64-linux", "int8")
    assert "sdot" not in asm

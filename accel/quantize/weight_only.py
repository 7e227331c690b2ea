"""Quantization modes 'int8-weight' and 'int4-weight': matmul weights stored as group-wise
symmetric int8 or packed int4, dequantized inside the matmul kernel; activations stay float32.

Only matmuls (ONNX MatMul and Gemm, torch Linear) with a constant 2-D weight are rewritten; the
rest of the model is unchanged. ``group_size`` need not divide the input channels: the last
group is then shorter and has its own scale (see accel/quantize/packing.py).
"""

from __future__ import annotations

import dataclasses

from ..errors import UsageError
from .fp16 import GPU_FAMILIES

BITS = {"int8-weight": 8, "int4-weight": 4}


def quantize_weights(model, spec, options):
    """The model with its constant matmul weights quantized; same float32 signature."""
    import tvm
    from tvm import relax

    from ..passes import FoldSimpleConstants
    from ..passes.quantize_matmul_weights import QuantizeMatmulWeights

    bits = BITS[options.mode.value]
    # Fold the weight transposes (Gemm's transB, torch Linear) so the matmul sees a constant.
    mod = tvm.transform.Sequential([
        FoldSimpleConstants(),
        QuantizeMatmulWeights(bits, options.group_size, block=column_block(spec),
                              prologue=spec.family in GPU_FAMILIES),
        relax.transform.DeadCodeElimination()])(model.mod)
    if quantized_matmuls(mod, bits) == 0:
        raise UsageError(
            f"--quantize {options.mode.value}: {model.source} has no matmul with a constant "
            f"2-D float32 weight (MatMul, Gemm or Linear with an initializer as its second "
            f"input), so there is nothing to quantize",
            hint="weight-only modes are for matmul-heavy models; for convolutions use int8")
    return dataclasses.replace(model, mod=mod)


def column_block(spec) -> int:
    """Output columns per weight block: the CPU schedule's vector tile for a GEMV (lanes x
    vectors per row, see accel/cpu_rules/tiles.py), so a task streams its block; 1 (plain
    [rows, N]) on GPUs, whose DLight rules coalesce over N themselves, and on Cortex-M."""
    if spec.family not in ("x86-cpu", "arm-cpu"):
        return 1
    from ..cpu_rules.common import vector_lanes
    from ..cpu_rules.tiles import max_vectors

    target = spec.tvm_target()
    return vector_lanes(target) * max_vectors(target)


def quantized_matmuls(mod, bits: int) -> int:
    """How many dequantizing matmul kernels of ``bits`` the module calls."""
    import tvm
    from tvm import relax

    call_tir = tvm.ir.Op.get("relax.call_tir")
    found = []

    def visit(call):
        if call.op.same_as(call_tir) and isinstance(call.args[0], tvm.ir.GlobalVar) and \
                call.args[0].name_hint.startswith(f"int{bits}_matmul"):
            found.append(call)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, lambda e: isinstance(e, relax.Call)
                                            and visit(e))
    return len(found)


def weight_bytes(mod) -> dict[str, int]:
    """Bytes of the module's constants per dtype (what the weights cost in the artifact)."""
    import tvm
    from tvm import relax

    totals: dict[str, int] = {}

    def visit(expr):
        if isinstance(expr, tvm.ir.GenericConst):
            arr = expr.value
            dtype = str(arr.dtype)
            totals[dtype] = totals.get(dtype, 0) + arr.numpy().nbytes

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return totals



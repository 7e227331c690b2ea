"""Quantization mode 'fp16': float16 compute, float32 accumulation in conv/matmul, float16 weights.

Which targets take it: GPUs (families cuda, mali, adreno), whose float16 arithmetic is native and
at least as fast as float32; and CPUs with native float16 arithmetic (x86 ``avx512fp16``,
AArch64 ``fullfp16``). Other CPUs are refused: LLVM would emulate every float16 operation with
conversions, so the model would come out slower than float32 and less accurate, which nobody asks
for with ``--quantize fp16``; weight-only int8/int4 is the way to smaller weights there.
"""

from __future__ import annotations

import dataclasses

from ..errors import TargetError

GPU_FAMILIES = ("cuda", "mali", "adreno")
#: LLVM features that give a CPU native float16 arithmetic.
CPU_FP16_FEATURES = ("avx512fp16", "fullfp16")


def to_fp16(model, spec, options):
    """The model with float16 compute and constants; float32 inputs and outputs as before."""
    check_fp16_target(spec)
    return dataclasses.replace(model, mod=mixed_precision(model.mod))


def check_fp16_target(spec) -> None:
    """Refuse a target without native float16 arithmetic, saying which targets take it."""
    if spec.family in GPU_FAMILIES or _cpu_has_fp16(spec):
        return
    raise TargetError(
        f"--quantize fp16: target '{spec.name}' (family {spec.family}) has no native float16 "
        f"arithmetic, so float16 would run slower than float32 there",
        hint="use it for GPU targets (families " + ", ".join(GPU_FAMILIES) + ") or CPUs with "
             + " or ".join(CPU_FP16_FEATURES) + "; for smaller weights on this CPU use "
             "--quantize int8-weight or int4-weight")


def _cpu_has_fp16(spec) -> bool:
    if spec.tvm.get("kind") != "llvm" and spec.family not in ("x86-cpu", "arm-cpu"):
        return False
    from tvm.target.codegen import target_has_features

    target = spec.tvm_target()
    return any(target_has_features(f, target) for f in CPU_FP16_FEATURES)


def mixed_precision(mod):
    """TVM's ToMixedPrecision (conv/matmul take float16 and accumulate in float32, elementwise
    ops run in float16, reductions such as softmax and mean stay float32), with the weight casts
    folded so the module holds float16 constants. The importer's TE clips become Relax ops
    first (ToMixedPrecision rejects calls to prim funcs), and BatchNorm is folded into its conv
    while the two are still adjacent (the casts in between would stop the pipeline's fold).
    Transcendentals stay float32 (UpcastFloat16Math: TVM's float16 fast-math is inaccurate)."""
    import tvm
    from tvm import relax

    from ..passes import (
        FoldBatchNormIntoConv,
        FoldSimpleConstants,
        LiftScalarMinMax,
        UpcastFloat16Math,
    )

    return tvm.transform.Sequential([
        relax.transform.DecomposeOpsForInference(), LiftScalarMinMax(),
        relax.transform.Normalize(), FoldSimpleConstants(), FoldBatchNormIntoConv(),
        FoldSimpleConstants(),
        relax.transform.ToMixedPrecision(out_dtype="float32"), UpcastFloat16Math(),
        FoldSimpleConstants(), relax.transform.DeadCodeElimination(),
    ])(mod)

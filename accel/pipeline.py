"""Compilation pipelines: per target family, an explicit ordered list of named phases of passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .options import CompileOptions, OptLevel


@dataclasses.dataclass(frozen=True)
class Phase:
    """A named group of passes; ``min_level`` is the lowest OptLevel that runs it."""

    name: str
    build: Callable  # (target, spec, options) -> list of passes
    min_level: OptLevel = OptLevel.O0


def _cleanup(target, spec, options):
    from tvm import relax

    from .passes import LiftScalarMinMax, LowerQDQToInteger

    # Q/DQ pairs (from --quantize int8 or a pre-quantized ONNX model) become integer compute
    # before FoldConstant can turn dequantized int8 weights back into float constants.
    return [LowerQDQToInteger(), relax.transform.DecomposeOpsForInference(), LiftScalarMinMax(),
            relax.transform.Normalize()]


def _simplify(target, spec, options):
    from tvm import relax

    from .passes import FoldBatchNormIntoConv, FoldSimpleConstants

    return [FoldSimpleConstants(), relax.transform.FoldConstant(), FoldBatchNormIntoConv(),
            relax.transform.EliminateCommonSubexpr(),
            relax.transform.DeadCodeElimination(), relax.transform.CanonicalizeBindings()]


def _layout(target, spec, options):
    from .layout import layout_passes

    return layout_passes(spec.family, options, target)


def _attention(target, spec, options):
    from .cpu_rules.common import vector_lanes
    from .passes import FuseAttention

    # the fused kernel is a parallel loop nest: for CPUs that run a TVM thread pool
    return [FuseAttention(vector_lanes(target))] if spec.family in ("x86-cpu", "arm-cpu") else []


def _pack_int8(target, spec, options):
    from .passes.pack_int8_contractions import PackInt8Contractions

    return [] if spec.family == "micro" else [PackInt8Contractions(target)]


def _dispatch(target, spec, options):
    from tvm import relax

    return [relax.backend.DispatchSampling(), relax.backend.DispatchSortScan()]


def _fast_math(target, spec, options):
    from tvm import relax

    # exp, erf, tanh and softmax as polynomials that vectorize (LLVM scalarizes libm's expf);
    # relative error about 1e-7 in float32.
    return [relax.transform.FastMathTransform()]


def _legalize(target, spec, options):
    from tvm import relax

    from .blocked_conv import legalize_conv2d
    from .layout import BLOCKED_FAMILIES

    custom = {"relax.nn.conv2d": legalize_conv2d} if spec.family in BLOCKED_FAMILIES else None
    return [relax.transform.LegalizeOps(custom), relax.transform.AnnotateTIROpPattern()]


def _fuse(target, spec, options):
    from tvm import relax

    return [relax.transform.FoldConstant(), relax.transform.FuseOps(),
            relax.transform.FuseTIR(), relax.transform.DeadCodeElimination()]


def _apply_tuning(target, spec, options):
    from .passes.apply_tuning_records import ApplyTuningRecords
    from .tuning.records import compile_database

    database = compile_database(spec, options.tuning_logs)
    return [ApplyTuningRecords(database)] if database is not None else []


def _schedule(target, spec, options):
    from .schedule import default_schedule_pass

    rule_pass = default_schedule_pass(spec.schedule)
    return [rule_pass] if rule_pass is not None else []


def _adreno_texture(target, spec, options):
    from tvm.relax.backend.adreno import pipeline as adreno

    return adreno.legalize_passes(target)


def _lower(target, spec, options):
    from tvm import relax

    return [relax.transform.RewriteDataflowReshape(), relax.transform.ToNonDataflow(),
            relax.transform.RemovePurityChecking(), relax.transform.CallTIRRewrite()]


def _finalize(target, spec, options):
    from tvm import relax

    graph = [relax.transform.RewriteCUDAGraph()] if spec.family == "cuda" else []
    return [relax.transform.StaticPlanBlockMemory(), *graph,
            relax.transform.LowerAllocTensor(), relax.transform.KillAfterLastUse(),
            relax.transform.LowerRuntimeBuiltin(), relax.transform.ComputePrimValue(),
            relax.transform.VMShapeLower(), relax.transform.AttachGlobalSymbol()]


CLEANUP = Phase("cleanup", _cleanup)
SIMPLIFY = Phase("simplify", _simplify, OptLevel.O1)
LAYOUT = Phase("layout", _layout)
ATTENTION = Phase("attention", _attention, OptLevel.O1)
PACK_INT8 = Phase("pack-int8", _pack_int8, OptLevel.O1)
DISPATCH = Phase("dispatch", _dispatch)
FAST_MATH = Phase("fast-math", _fast_math, OptLevel.O2)
LEGALIZE = Phase("legalize", _legalize)
FUSE = Phase("fuse", _fuse, OptLevel.O1)
APPLY_TUNING = Phase("apply-tuning", _apply_tuning, OptLevel.O1)
SCHEDULE = Phase("schedule", _schedule)
ADRENO_TEXTURE = Phase("adreno-texture", _adreno_texture)
LOWER = Phase("lower", _lower)
FINALIZE = Phase("finalize", _finalize)

_CPU = (CLEANUP, SIMPLIFY, LAYOUT, ATTENTION, PACK_INT8, DISPATCH, FAST_MATH, LEGALIZE, FUSE,
        APPLY_TUNING, SCHEDULE, LOWER, FINALIZE)
# GPUs always need the schedule phase: an unscheduled kernel has no thread binding.
_GPU = (CLEANUP, SIMPLIFY, DISPATCH, LEGALIZE, FUSE, APPLY_TUNING, SCHEDULE, LOWER, FINALIZE)
_ADRENO = (CLEANUP, SIMPLIFY, DISPATCH, ADRENO_TEXTURE, LOWER, FINALIZE)

PIPELINES: dict[str, tuple[Phase, ...]] = {
    "x86-cpu": _CPU,
    "arm-cpu": _CPU,
    "micro": _CPU,
    "cuda": _GPU,
    "mali": _GPU,
    "adreno": _ADRENO,
}


def phases_for(pipeline: str, options: CompileOptions) -> list[Phase]:
    """The phases a compile runs for this pipeline at this optimization level."""
    return [p for p in PIPELINES[pipeline] if options.opt_level.value >= p.min_level.value]


#: The tuner extracts its tasks from the module as it is when this phase begins.
TUNING_PHASE = APPLY_TUNING.name


def tuning_passes(spec, target, options: CompileOptions):
    """The phases before records are applied, as (name, passes): what the tuner runs first."""
    phases = phases_for(spec.family, options)
    names = [p.name for p in phases]
    if TUNING_PHASE not in names:
        from .errors import UsageError

        raise UsageError(f"target '{spec.name}' ({spec.family}) cannot be tuned at "
                         f"{options.opt_level.name}: its pipeline has no fused kernels to tune",
                         hint="tune at O1 or above, for a CPU, CUDA or Mali target")
    kept = phases[:names.index(TUNING_PHASE)]
    return [(p.name, p.build(target, spec, options)) for p in kept]


def run_until_lower(mod, spec, options: CompileOptions):
    """``mod`` after every phase before ``lower``: fused, scheduled kernels still in TIR."""
    import tvm

    target = spec.tvm_target()
    with target:
        phases = build_passes(spec, target, options)
    with target, tvm.transform.PassContext(opt_level=3):
        for name, passes in phases:
            if name == LOWER.name:
                break
            mod = tvm.transform.Sequential(passes)(mod)
    return mod


def build_passes(spec, target, options: CompileOptions):
    """Instantiate each phase's passes: a list of (phase name, passes)."""
    phases = phases_for(spec.family, options)
    return [(p.name, p.build(target, spec, options)) for p in phases]




ADRENO_TIR_PIPELINE = "accel-adreno"


def tir_pipeline(spec) -> str:
    """The TIR pipeline ``tvm.compile`` runs: TVM's Adreno one (texture flattening) for Adreno.

    TVM 0.27's Relax build always asks for "default", whose kernels declare textures as
    ``image2d_array_t`` but address them as pointers: OpenCL C that does not compile. Its
    Adreno pipeline returns a bare pass where the build expects (pipeline, host, device).
    """
    if spec.family != "adreno":
        return "default"
    from tvm.s_tir.backend.adreno import pipeline as adreno
    from tvm.tirx import compilation_pipeline as tir

    tir.register_tir_pipeline(ADRENO_TIR_PIPELINE, lambda: (
        adreno.default_tir_pipeline(), tir.finalize_host_passes, tir.finalize_device_passes))
    return ADRENO_TIR_PIPELINE

"""accel.compile: Model -> Artifact for a named target (import, pipeline, build, export, write)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import time
from pathlib import Path

from .artifact import FORMAT, FORMAT_VERSION, Artifact, copy_artifact, write_artifact
from .cache import CachePolicy, CompileCache, cache_key
from .errors import AccelError, CacheError, CompileError, UsageError, did_you_mean
from .fsutil import sha256_bytes
from .model import Model, load_model, source_digest
from .options import CompileOptions
from .target import TargetSpec, get_target
from .tuning.records import tuning_digest
from .versions import versions


def compile(model, target: str | TargetSpec | None = None, *,
            options: CompileOptions | None = None, output: str | os.PathLike | None = None,
            example_inputs=None, dump_ir: str | os.PathLike | None = None,
            signing_key: bytes | None = None, cache: str | CachePolicy | None = None,
            cache_dir: str | os.PathLike | None = None, calibration=None) -> Artifact:
    """Compile a model for a named target into a one-file artifact, reusing the compile cache.

    Parameters
    ----------
    model : str, PathLike, onnx.ModelProto, torch.nn.Module or torch.export.ExportedProgram
        The model; an ``nn.Module`` needs ``example_inputs``.
    target : str or TargetSpec, optional
        A named target (``accel targets list``); ``None`` means this host.
    options : CompileOptions, optional
        Optimization level, input shapes, disabled passes.
    output : path, optional
        Where to write the artifact; by default the cache entry itself.
    dump_ir : path, optional
        A folder receiving the IR after every pass (one file per pass); the passes then run
        even when the cache holds the artifact.
    signing_key : bytes, optional
        Sign the manifest with HMAC-SHA256 (``accel.load(..., signing_key=...)`` checks it).
    cache : {"on", "off", "readonly", "redo"}, optional
        Cache policy; default ``$ACCEL_CACHE``, else ``on``.
    cache_dir : path, optional
        accel's cache folder; default ``$ACCEL_CACHE_DIR``, else the user cache folder.
    calibration : path or iterable of dicts, optional
        For ``options.quantize`` int8: a folder of ``.npz`` input sets, or ``{input name:
        array}`` dicts. Their content digest keys the cache.

    Returns
    -------
    Artifact
        ``artifact.cached`` tells whether it came from the cache.
    """
    from .quantize import check_calibration

    options = options or CompileOptions()
    spec = get_target(target)
    check_calibration(options.quantize, calibration)
    if spec.is_micro:  # a C package folder (accel/micro), not a one-file artifact: uncached
        from .micro import compile_package, toolchain

        toolchain.require_compiler(spec)
        model = load_model(model, example_inputs=example_inputs, options=options)
        model = _quantized(model, spec, options, _calibration_sets(calibration, model))
        return compile_package(model, spec, options=options, output=output, dump_ir=dump_ir,
                               signing_key=signing_key)
    policy = CachePolicy.parse(cache)
    if dump_ir is not None and policy.reads:  # a dump needs the passes to run
        policy = CachePolicy.REDO if policy.writes else CachePolicy.OFF
    digest, prepared = source_digest(model, example_inputs=example_inputs)
    calibration, calibration_id = _calibration_key(calibration)
    key = cache_key({"model": digest, "target": spec.identity(), "options": options.to_json(),
                     "tuning": tuning_digest(spec, options.tuning_logs), "versions": versions(),
                     **({"calibration": calibration_id} if calibration_id else {})})
    store = CompileCache.default(cache_dir)
    hit = store.lookup(key) if policy.reads else None
    if hit is not None:
        return _deliver(hit, output, signing_key, store)
    with _locked(store, key) if policy is not CachePolicy.OFF else contextlib.nullcontext():
        hit = store.lookup(key) if policy.reads else None  # another process may have won
        if hit is not None:
            return _deliver(hit, output, signing_key, store)
        return _compile_new(prepared, spec, options, key, store, policy, output,
                            example_inputs=example_inputs, dump_ir=dump_ir,
                            signing_key=signing_key, calibration=calibration)


def _calibration_key(calibration):
    """Calibration data in a form read once, and its identity for the cache key.

    A folder or file is keyed by its content without a model at hand: the sets are read
    as they are, checked against the model's inputs later (``_calibration_sets``).
    """
    if calibration is None:
        return None, None
    from .quantize.calibration import calibration_digest, read_sets

    sets = read_sets(calibration)
    return sets, calibration_digest(sets)


def _calibration_sets(calibration, model):
    if calibration is None:
        return None
    from .quantize.calibration import load_calibration

    return load_calibration(calibration, model.inputs)


def _quantized(model, spec, options, calibration):
    """The model rewritten by ``options.quantize`` (unchanged when it is None)."""
    if options.quantize is None:
        return model
    from .quantize import apply_quantization

    return apply_quantization(model, spec, options.quantize, calibration)


def _quantize_report(model) -> dict:
    """What the quantized model's constants cost, per dtype (the weights in the artifact)."""
    from .quantize.weight_only import weight_bytes

    return {"constant_bytes": weight_bytes(model.mod)}


def _compile_new(model, spec, options, key, store, policy, output, *, example_inputs, dump_ir,
                 signing_key, calibration=None) -> Artifact:
    """Import, build and write a fresh artifact; store it in the cache when the policy writes."""
    started = time.perf_counter()
    model = load_model(model, example_inputs=example_inputs, options=options)
    import_s = time.perf_counter() - started
    if options.quantize is not None:
        started = time.perf_counter()
        model = _quantized(model, spec, options, _calibration_sets(calibration, model))
        quantize_s = time.perf_counter() - started
    # TVM's build leaves state on the module's functions: the OpenCL plan needs a clean copy.
    pristine = _copy_module(model.mod) if spec.device == "opencl" else None
    executable, report, spec = build(model, spec, options, dump_ir=dump_ir)
    report["phases"].insert(0, {"name": "import", "seconds": round(import_s, 4)})
    if options.quantize is not None:
        report["phases"].insert(1, {"name": "quantize", "seconds": round(quantize_s, 4)})
        report["quantize"] = _quantize_report(model)
    manifest, members = _package(model, spec, options, executable, report)
    if pristine is not None:  # what accel.opencl needs to run the kernels without TVM
        from .opencl.plan import artifact_members

        members.update(artifact_members(dataclasses.replace(model, mod=pristine), spec, options))
    manifest["cache_key"] = key
    if policy.writes:
        entry = write_artifact(store.path_for(key), manifest, members)
        store.prune()
        return _deliver(entry, output, signing_key, store, cached=False)
    path = Path(output) if output else store.root.parent / "uncached" / f"{key}.accel"
    return write_artifact(path, manifest, members, signing_key=signing_key)


def _deliver(entry: Artifact, output, signing_key, store: CompileCache, *,
             cached: bool = True) -> Artifact:
    """The cache entry itself, or a copy at ``output`` (signed when a key is given)."""
    if output is None and signing_key is None:
        return dataclasses.replace(entry, cached=cached)
    path = Path(output) if output else store.root.parent / "signed" / entry.path.name
    artifact = copy_artifact(entry, path, signing_key=signing_key)
    return dataclasses.replace(artifact, cached=cached)


@contextlib.contextmanager
def _locked(store: CompileCache, key: str):
    import filelock

    try:
        with store.lock(key):
            yield
    except filelock.Timeout:
        raise CacheError(f"timed out waiting for another process compiling the same model "
                         f"(lock {store.root / key}.lock)") from None


def build(model: Model, spec: TargetSpec, options: CompileOptions, *, dump_ir=None):
    """Run the family pipeline and TVM's build; return (executable, report, target used).

    When TVM fails and the target declares a ``[fallback]`` TVM target (Adreno: textures ->
    OpenCL buffers), the model is rebuilt for it and the report says why.
    """
    pristine = _copy_module(model.mod) if spec.fallback_tvm else None
    try:
        return (*_build_with(model, spec, options, dump_ir), spec)
    except CompileError as exc:
        if not spec.fallback_tvm:
            raise
        fallback = dataclasses.replace(spec, tvm={**spec.tvm, **spec.fallback_tvm})
        model = dataclasses.replace(model, mod=pristine)
        executable, report = _build_with(model, fallback, options, dump_ir)
        report["fallback"] = {"tvm": spec.fallback_tvm, "reason": exc.message}
        return executable, report, fallback


def _copy_module(mod):
    """A deep copy: a failed TVM build can leave state on the module's functions that breaks a
    second build of the same objects (seen with Adreno textures in TVM 0.27)."""
    import tvm

    return tvm.ir.load_json(tvm.ir.save_json(mod))


def _build_with(model: Model, spec: TargetSpec, options: CompileOptions, dump_ir):
    import tvm

    from .pipeline import build_passes, tir_pipeline

    target = spec.tvm_target()
    with target:  # some phases (Adreno's) read the current target while being built
        phases = build_passes(spec, target, options)
    _check_disabled(options, phases)
    timings: list[dict] = []
    relax_pipeline = _timed_pipeline(phases, target, timings)
    instruments = [tvm.ir.instrument.DumpIR(str(dump_ir), refresh=True)] if dump_ir else []
    with _device_codegen(spec, target), tvm.transform.PassContext(
            opt_level=3, disabled_pass=list(options.disabled_passes), instruments=instruments):
        kernels_before = _count_kernels_after_legalize(model.mod, target)
        started = time.perf_counter()
        try:
            executable = tvm.compile(model.mod, target, relax_pipeline=relax_pipeline,
                                     tir_pipeline=tir_pipeline(spec))
        except AccelError:
            raise
        except Exception as exc:
            raise CompileError(f"{model.source}: compiling for target '{spec.name}' failed: "
                               f"{_last_line(exc)}") from exc
    report = _report(timings, time.perf_counter() - started, kernels_before)
    report["pipeline"] = spec.family
    return executable, report


def _check_disabled(options: CompileOptions, phases) -> None:
    names = {p.info.name for _, passes in phases for p in passes}
    for name in options.disabled_passes:
        if name not in names:
            raise UsageError(f"--disable-pass '{name}' is not a pass of this pipeline",
                             hint=did_you_mean(name, names))


def _timed_pipeline(phases, target, timings: list[dict]):
    import tvm

    @tvm.transform.module_pass(opt_level=0, name="accel.Pipeline")
    def pipeline(mod, _ctx):
        with target:
            for name, passes in phases:
                started = time.perf_counter()
                mod = tvm.transform.Sequential(passes, name=f"accel.{name}")(mod)
                timings.append({"name": name, "seconds": round(time.perf_counter() - started, 4),
                                "kernels": _count_prim_funcs(mod),
                                "scheduled": _count_prim_funcs(mod, scheduled=True)})
        return mod

    return pipeline


def _count_prim_funcs(mod, *, scheduled: bool = False) -> int:
    import tvm

    return sum(isinstance(f, tvm.tirx.PrimFunc)
               and (not scheduled or bool(f.attrs and f.attrs.get("tirx.is_scheduled", False)))
               for f in mod.functions.values())


def _count_kernels_after_legalize(mod, target) -> int:
    """Kernel count with no fusion: the baseline the report compares fused kernels with."""
    import tvm
    from tvm import relax

    with target:
        legal = tvm.transform.Sequential([relax.transform.DecomposeOpsForInference(),
                                          relax.transform.LegalizeOps()])(mod)
    return _count_prim_funcs(legal)


def _report(timings: list[dict], total_s: float, kernels_before: int) -> dict:
    phases = list(timings)
    in_pipeline = sum(t["seconds"] for t in phases)
    phases.append({"name": "codegen", "seconds": round(total_s - in_pipeline, 4)})
    after = next((t["kernels"] for t in reversed(phases) if "kernels" in t), None)
    tuned = next((t["scheduled"] for t in phases if t["name"] == "apply-tuning"), 0)
    return {"phases": phases, "kernels_unfused": kernels_before, "kernels": after,
            "kernels_tuned": tuned}


def _last_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:400]


def _device_codegen(spec: TargetSpec, target):
    """Device code generation set-up: CUDA needs nvcc reachable even without a driver."""
    if spec.family != "cuda":
        return contextlib.nullcontext()
    from .cuda import cuda_compile_env

    return cuda_compile_env(target)


def _package(model, spec, options, executable, report) -> tuple[dict, dict[str, bytes]]:
    """Export the library (and device sources); return the manifest and the artifact members."""
    from .export import device_sources, export_library

    started = time.perf_counter()
    if spec.family == "cuda":
        report["cuda_kernels"] = _check_cuda(executable, spec)
    lib_name, lib_bytes = export_library(executable, spec)
    members = {lib_name: lib_bytes}
    members.update({k: v.encode() for k, v in device_sources(executable).items()})
    seconds = round(time.perf_counter() - started, 4)
    report["phases"].append({"name": "export", "seconds": seconds})
    return _manifest(model, spec, options, lib_name, lib_bytes, report), members


def _check_cuda(executable, spec: TargetSpec) -> list[dict]:
    """Prove the CUDA code is a real fatbin (not kept source); return ptxas resource usage."""
    from .cuda import embedded_device_binaries, is_fatbin, ptxas_report
    from .errors import InternalError

    if not any(is_fatbin(b) for b in embedded_device_binaries(executable)):
        raise InternalError(f"target '{spec.name}': TVM kept CUDA source instead of a fatbin")
    return ptxas_report(executable)


def manifest_head(model: Model, spec: TargetSpec, fmt: str, version: int) -> dict:
    """The fields every accel output's manifest starts with: format, model, signature, target."""
    return {
        "format": fmt, "format_version": version,
        "model": {"source": model.source, "format": model.format, "sha256": model.sha256},
        "inputs": [t.to_json() for t in model.inputs],
        "outputs": [t.to_json() for t in model.outputs],
        "target": {"name": spec.name, "family": spec.family, "tvm": spec.resolved(),
                   "fingerprint": spec.fingerprint()},
    }


def _manifest(model, spec, options, lib_name, lib_bytes, report) -> dict:
    return {
        **manifest_head(model, spec, FORMAT, FORMAT_VERSION),
        "runtime": {"arch": spec.arch, "device": spec.device,
                    "cpu_features": list(spec.cpu_features)},
        "library": {"path": lib_name, "format": spec.export_format,
                    "sha256": sha256_bytes(lib_bytes), "bytes": len(lib_bytes)},
        "options": options.to_json(),
        "versions": versions(),
        "report": report,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }

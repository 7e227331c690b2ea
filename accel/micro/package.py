"""accel.compile for microcontrollers: lower, plan, emit and size a C package, atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import AccelError, CompileError, UsageError
from ..fsutil import sha256_bytes
from ..signature import ManifestIO
from ..versions import versions
from . import emit, toolchain
from .graph import lower_graph
from .kernels import build_kernels
from .plan import lifetimes, plan_arena
from .runtime_c import RT_HEADER, runtime_source

FORMAT = "accel-c-package"
FORMAT_VERSION = 1
#: Phases of the family pipeline the package needs: up to fused, scheduled TIR kernels.
_STOP_AT = ("lower", "finalize")


@dataclasses.dataclass(frozen=True)
class CPackage(ManifestIO):
    """A C package folder on disk and its manifest (the micro counterpart of an Artifact)."""

    path: Path
    manifest: dict[str, Any]



def compile_package(model, spec, *, options, output, dump_ir=None,
                    signing_key=None) -> CPackage:
    """Compile an imported model into a standalone C package folder.

    Parameters
    ----------
    model : accel.model.Model
        The imported model (static shapes).
    spec : TargetSpec
        A ``micro`` family target (cortex-m4, cortex-m7, cortex-m55, c-host).
    options : CompileOptions
        Optimization level and disabled passes, as for other targets.
    output : path
        The package folder; written to a temp folder beside it, then renamed into place.
    dump_ir : path, optional
        A folder receiving the IR after every pass.
    signing_key : bytes, optional
        Not supported: C packages are not signed (a clear error if given).

    Returns
    -------
    CPackage
    """
    if signing_key:
        raise UsageError(f"target '{spec.name}': C packages cannot be signed",
                         hint="drop the signing key, or sign the folder with your own tools")
    if output is None:
        raise UsageError(f"target '{spec.name}' writes a C package folder: give an output path",
                         hint="accel compile MODEL -t TARGET -o model_c/")
    compiler = toolchain.require_compiler(spec)
    _check_replaceable(Path(output))
    timings: list[dict] = []
    with _timed(timings, "pipeline"):
        mod, rewrites = _fused_module(model, spec, options, dump_ir)
    with _timed(timings, "plan"):
        graph = lower_graph(mod, inputs=[t.name for t in model.inputs],
                            outputs=[t.name for t in model.outputs])
    with _timed(timings, "codegen"):
        kernels = build_kernels(graph.kernels, spec.tvm_target(), target_name=spec.name)
    plan = plan_arena(lifetimes(graph, kernels.workspaces))
    files = _files(model, spec, graph, plan, kernels)
    rewrites["float64_kernels"] = list(kernels.float64)
    return _write(Path(output), files, compiler=compiler, spec=spec, model=model,
                  options=options, plan=plan, graph=graph, timings=timings, rewrites=rewrites)


@contextlib.contextmanager
def _timed(timings: list[dict], name: str):
    started = time.perf_counter()
    yield
    timings.append({"name": name, "seconds": round(time.perf_counter() - started, 4)})


def _fused_module(model, spec, options, dump_ir):
    """Run the family pipeline up to (not including) the VM lowering phases; also what the
    micro passes rewrote (counts)."""
    import tvm
    from tvm import relax
    from tvm.s_tir import dlight

    from ..pipeline import build_passes
    from .inline import inline_rule

    target = spec.tvm_target()
    instruments = [tvm.ir.instrument.DumpIR(str(dump_ir), refresh=True)] if dump_ir else []
    with target, tvm.transform.PassContext(opt_level=3, instruments=instruments,
                                           disabled_pass=list(options.disabled_passes)):
        passes, micro = _micro_passes(build_passes(spec, target, options))
        # After the family's schedule phase: kernels it left unscheduled get the inline rule.
        passes += [dlight.ApplyDefaultSchedule(inline_rule()),
                   relax.transform.RewriteDataflowReshape()]
        try:
            mod = tvm.transform.Sequential(passes, name="accel.micro")(model.mod)
        except AccelError:
            raise
        except Exception as exc:
            last = [ln for ln in str(exc).splitlines() if ln.strip()][-1:] or ["?"]
            raise CompileError(f"{model.source}: lowering for target '{spec.name}' failed: "
                               f"{last[0][:300]}") from exc
    counters = {"float64_demoted": "demoted", "qdq_integer_ops": "rewritten",
                "raw_int_input_ops": "rewritten", "weight_bytes_narrowed": "saved"}
    return mod, {key: int(getattr(micro[key], attr)) for key, attr in counters.items()}


def _micro_passes(phases) -> tuple[list, dict]:
    """The family's phases up to _STOP_AT; float64 demoted first; just before legalization
    (after the last folding of whole expressions) QDQ convs and matmuls made integer, 8-bit
    tensors fed to integer convs and matmuls directly, and integer weights narrowed."""
    from .narrow_weights import NarrowIntWeights
    from .qdq_integer import IntegerQdq
    from .raw_int_inputs import RawIntInputs
    from .single_precision import DemoteFloat64

    micro = {"float64_demoted": DemoteFloat64(), "qdq_integer_ops": IntegerQdq(),
             "raw_int_input_ops": RawIntInputs(), "weight_bytes_narrowed": NarrowIntWeights()}
    passes = [micro["float64_demoted"]]
    for name, ps in phases:
        if name in _STOP_AT:
            continue
        if name == "legalize":
            passes += [micro[k] for k in ("qdq_integer_ops", "raw_int_input_ops",
                                          "weight_bytes_narrowed")]
        passes += ps
    return passes, micro


def _files(model, spec, graph, plan, kernels) -> dict[str, str]:
    weights_bytes = sum(graph.buffers[b].nbytes for b in graph.weights)
    max_args = max((len(c.args) for c in graph.calls), default=1)
    return {
        "model.h": emit.model_header(model, spec, plan=plan, weights_bytes=weights_bytes),
        "model.c": emit.model_source(model, graph, plan=plan, workspaces=kernels.workspaces),
        "kernels.c": kernels.text,
        "weights.c": emit.weights_source(graph),
        "accel_rt.h": RT_HEADER,
        "accel_runtime.c": runtime_source(max_args),
        "Makefile": makefile(spec),
    }


def makefile(spec) -> str:
    """A Makefile building libmodel.a with the target's compiler and flags."""
    cc = spec.toolchain or "cc"
    flags = " ".join((*spec.cflags, *toolchain.COMMON_CFLAGS))
    objs = " ".join(n.replace(".c", ".o") for n in toolchain.PARTS)
    return (f"# Builds libmodel.a for target {spec.name}: link it into your application "
            "with -lm.\n"
            f"CC = {cc}\nAR = {toolchain.sibling_tool(cc, 'ar')}\nCFLAGS = {flags}\n"
            f"OBJS = {objs}\n\n"
            "libmodel.a: $(OBJS)\n\t$(AR) rcs $@ $(OBJS)\n\n"
            "%.o: %.c accel_rt.h model.h\n\t$(CC) $(CFLAGS) -I. -c $< -o $@\n\n"
            "clean:\n\trm -f $(OBJS) libmodel.a\n\n.PHONY: clean\n")


def _write(out: Path, files, *, compiler, spec, model, options, plan, graph,
           timings, rewrites) -> CPackage:
    """Write into a temp folder beside ``out``, size it, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        with _timed(timings, "size"):
            objects = toolchain.compile_objects(tmp, compiler, cflags=spec.cflags)
            sizes = toolchain.size_report(objects, compiler, arena=plan.size)
        shutil.rmtree(tmp / ".obj")
        manifest = _manifest(model, spec, options, files, plan, graph, sizes, timings)
        manifest["report"]["micro_rewrites"] = rewrites
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return CPackage(out, manifest)


def _check_replaceable(out: Path) -> None:
    if out.exists() and not (out.is_dir() and (not any(out.iterdir())
                                               or (out / "manifest.json").is_file())):
        raise UsageError(f"{out} exists and is not a C package folder; not replacing it")


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing package there is moved aside, then deleted."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / "pkg")
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _manifest(model, spec, options, files, plan, graph, sizes, timings) -> dict:
    from ..compiler import manifest_head

    head = manifest_head(model, spec, FORMAT, FORMAT_VERSION)
    head["target"]["cflags"] = list(spec.cflags)
    return {
        **head,
        "call": "int accel_model_run(" + ", ".join(
            ["const " + emit.c_type(t.dtype) + " *" for t in model.inputs]
            + [emit.c_type(t.dtype) + " *" for t in model.outputs]) + ")",
        "files": {n: sha256_bytes(t.encode()) for n, t in sorted(files.items())},
        "sizes": sizes,
        "arena": {"size": plan.size, "peak_live": plan.peak_live, "plan": plan.describe()},
        "options": options.to_json(),
        "versions": versions(),
        "report": {"phases": timings, "kernels": len({c.kernel for c in graph.calls}),
                   "kernel_calls": len(graph.calls), "kernels_unfused": None,
                   "weights_bytes": sum(graph.buffers[b].nbytes for b in graph.weights)},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }

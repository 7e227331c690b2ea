"""PyTorch import through torch.export: nn.Module with example inputs, ExportedProgram, or .pt2."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import torch

from ..errors import InvalidModelError, ModelFileError, UnsupportedOpError, UsageError
from ..model import Model
from . import relax_outputs, torch_rnn


def import_module(module, *, example_inputs, shapes: dict | None = None) -> Model:
    """Export an ``nn.Module`` (or take an ``ExportedProgram``) and import it into Relax.

    ``shapes`` pins the program's dynamic (``torch.export.Dim``) input dims.
    """
    program = export_module(module, example_inputs=example_inputs)
    source = "<ExportedProgram>" if module is program else f"<{type(module).__name__}>"
    return _import_program(program, source=source, shapes=shapes or {})


def export_module(module, *, example_inputs):
    """``torch.export`` an ``nn.Module`` with its example inputs; an ExportedProgram is kept."""
    if isinstance(module, torch.export.ExportedProgram):
        return module
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"cannot compile a {type(module).__name__}")
    if example_inputs is None:
        raise UsageError("a torch.nn.Module needs example_inputs (a tuple of tensors)")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    try:
        return torch.export.export(module.eval(), tuple(example_inputs))
    except Exception as exc:
        raise InvalidModelError(f"<{type(module).__name__}>: torch.export failed: "
                                f"{str(exc).strip().splitlines()[0][:300]}") from exc


def program_digest(program) -> str:
    """sha256 over an ExportedProgram's graph code, input shapes (with their dynamic dims and
    ranges: the code alone is the same for a static and a dynamic export), parameters and
    constants."""
    digest = hashlib.sha256(str(program.graph_module.code).encode())
    for node in program.graph.nodes:
        if node.op == "placeholder" and hasattr(node.meta.get("val"), "shape"):
            digest.update(f"{node.name}:{tuple(node.meta['val'].shape)}".encode())
    digest.update(repr(sorted((str(k), str(v)) for k, v in program.range_constraints.items()))
                  .encode())
    for name, value in sorted(program.state_dict.items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    for name, value in sorted(program.constants.items()):
        if isinstance(value, torch.Tensor):
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def import_pt2(path: Path, *, shapes: dict | None = None) -> Model:
    """Import a program saved with ``torch.export.save``; ``shapes`` pins its dynamic dims."""
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: not a torch.export program ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None
    return _import_program(program, source=str(path), digest=_file_digest(path),
                           shapes=shapes or {})


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_program(program, *, source: str, shapes: dict, digest: str | None = None) -> Model:
    from tvm.relax.frontend.torch import from_exported_program

    from .torch_shapes import bind_dims, input_specs

    inputs, binding = input_specs(program, source, shapes)
    core = _decompose(program, source)
    try:
        mod = from_exported_program(core, keep_params_as_input=False, run_ep_decomposition=False,
                                    custom_convert_map=torch_rnn.converters())
    except AssertionError as exc:
        raise _unsupported(source, core, str(exc)) from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise InvalidModelError(f"{source}: the PyTorch importer failed: {first[:300]}") from exc
    mod = bind_dims(mod, binding)
    outputs = relax_outputs(mod)
    return Model(mod, inputs, outputs, digest or program_digest(program), source, "torch")


def _decompose(program, source: str):
    """Core ATen, except the ops accel converts whole (LSTM, GRU: see torch_rnn)."""
    table = torch.export.default_decompositions()
    for op in torch_rnn.preserved_ops():
        table.pop(op, None)
    try:
        return program.run_decompositions(table)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidModelError(f"{source}: torch's decomposition failed: {first[:300]}") from exc


def _unsupported(source: str, core, message: str) -> Exception:
    prefix = "Unsupported function types "
    if not message.startswith(prefix):
        return InvalidModelError(f"{source}: the PyTorch importer failed: {message[:300]}")
    ops = ast.literal_eval(message[len(prefix):])
    found: dict[str, list[str]] = {op: [] for op in ops}
    for node in core.graph.nodes:
        name = getattr(node.target, "__name__", "")
        if node.op == "call_function" and name in found:
            found[name].append(node.name)
    return UnsupportedOpError(source, found)

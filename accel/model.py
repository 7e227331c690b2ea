"""The Model stage value: an imported Relax module with its signature, and the import dispatch."""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Any

from .errors import ModelFileError, UsageError
from .fsutil import sha256_bytes, sha256_file
from .options import CompileOptions
from .signature import TensorSpec


@dataclasses.dataclass(frozen=True)
class Model:
    """A model imported into TVM's Relax IR, weights bound as constants."""

    mod: Any  # tvm.IRModule
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sha256: str
    source: str
    format: str  # "onnx" or "torch"


def load_model(model, *, example_inputs=None, options: CompileOptions | None = None) -> Model:
    """Import an ONNX file or ModelProto, a saved torch.export program (.pt2), an
    ``ExportedProgram``, or an ``nn.Module`` with ``example_inputs``, into a :class:`Model`."""
    options = options or CompileOptions()
    shapes, values = dict(options.input_shapes), dict(options.input_values)
    if isinstance(model, Model):
        return model
    if isinstance(model, str | os.PathLike):
        return _load_path(Path(model), shapes, values)
    kind = _kind(model)
    if kind == "onnx":
        from .frontends import onnx as onnx_frontend

        return onnx_frontend.import_model(model, source="<onnx.ModelProto>", shapes=shapes,
                                          values=values)
    if kind == "torch":
        from .frontends import torch as torch_frontend

        return torch_frontend.import_module(model, example_inputs=example_inputs, shapes=shapes)
    raise UsageError(f"cannot compile a {type(model).__name__}",
                     hint="pass an .onnx or .pt2 path, an onnx.ModelProto, a torch.nn.Module "
                          "with example_inputs, or a torch.export.ExportedProgram")


def source_digest(model, *, example_inputs=None) -> tuple[str, Any]:
    """The content digest of a model, computed before (and without) importing it into TVM.

    Returns the digest (equal to the imported :attr:`Model.sha256`) and the model in a form
    :func:`load_model` takes without redoing work: an ``nn.Module`` comes back exported.
    """
    if isinstance(model, Model):
        return model.sha256, model
    if isinstance(model, str | os.PathLike):
        path = _checked_path(Path(model))
        return sha256_file(path), path
    kind = _kind(model)
    if kind == "onnx":
        return sha256_bytes(model.SerializeToString()), model
    if kind == "torch":
        from .frontends import torch as torch_frontend

        program = torch_frontend.export_module(model, example_inputs=example_inputs)
        return torch_frontend.program_digest(program), program
    return "", model  # load_model raises the clear error


def _kind(model) -> str | None:
    """'onnx' or 'torch' for in-memory models; checked without importing either library."""
    import sys

    onnx, torch = sys.modules.get("onnx"), sys.modules.get("torch")
    if onnx is not None and isinstance(model, onnx.ModelProto):
        return "onnx"
    if torch is not None and isinstance(model, torch.nn.Module | torch.export.ExportedProgram):
        return "torch"
    return None


def _checked_path(path: Path) -> Path:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    return path


def _load_path(path: Path, shapes: dict, values: dict) -> Model:
    _checked_path(path)
    if path.suffix == ".pt2" or zipfile.is_zipfile(path):
        from .frontends import torch as torch_frontend

        return torch_frontend.import_pt2(path, shapes=shapes)
    from .frontends import onnx as onnx_frontend

    return onnx_frontend.import_file(path, shapes=shapes, values=values)

"""ONNX import: reads and checks the file, finds unsupported ops, pins shapes, runs the importer."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx

from ..errors import InvalidModelError, ModelFileError, ShapeError, UnsupportedOpError, did_you_mean
from ..fsutil import sha256_bytes
from ..model import Model
from ..signature import TensorSpec
from . import relax_outputs

_DEFAULT_DOMAINS = ("", "ai.onnx")


def import_file(path: Path, *, shapes: dict[str, tuple[int, ...]],
                values: dict[str, tuple] | None = None) -> Model:
    """Import an ONNX file, with clear errors for missing, non-model or malformed files."""
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelFileError(f"{path}: not an ONNX model ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelFileError(f"{path}: not an ONNX model (no graph)")
    return import_model(model, source=str(path), shapes=shapes, data=data, values=values)


def import_model(model: onnx.ModelProto, *, source: str, shapes: dict[str, tuple[int, ...]],
                 data: bytes | None = None, values: dict[str, tuple] | None = None) -> Model:
    """Import an in-memory ONNX model into a :class:`Model` with static input shapes
    (``values``: inputs bound to constants, ``--input-value``)."""
    from .onnx_bind import bind_values
    from .onnx_fold import fold_constants

    _check(model, source)
    digest = sha256_bytes(data if data is not None else model.SerializeToString())
    if values:
        model = bind_values(model, values, source, shapes)
        shapes = {n: s for n, s in shapes.items() if n not in values}
    inputs = _input_specs(model, source, shapes)
    model = fold_constants(model, {t.name: t.shape for t in inputs})
    _check_ops(model, source)
    mod = _convert(model, source, inputs)
    try:
        outputs = relax_outputs(mod, [o.name for o in model.graph.output])
    except ShapeError as exc:
        raise _dynamic_output(model, source, exc) from None
    return Model(mod, inputs, outputs, digest, source, "onnx")


def _dynamic_output(model: onnx.ModelProto, source: str, exc: ShapeError) -> Exception:
    """An output whose shape depends on input values: the op producing it is unsupported."""
    name = exc.message.split("'")[1] if "'" in exc.message else ""
    node = next((n for n in model.graph.node if name in n.output), None)
    if node is None:
        return exc
    return UnsupportedOpError(source, {node.op_type: [node.name or name]},
                              reasons={node.op_type: "its output shape depends on input values "
                                                     "(accel compiles static shapes)"})


def _check(model: onnx.ModelProto, source: str) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidModelError(f"{source}: malformed ONNX model: {first}") from None


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    weights = {init.name for init in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in weights]


def _input_specs(model, source, shapes) -> tuple[TensorSpec, ...]:
    graph_inputs = _graph_inputs(model)
    names = [vi.name for vi in graph_inputs]
    for name in shapes:
        if name not in names:
            raise ShapeError(f"{source}: --input-shape names unknown input '{name}'",
                             hint=did_you_mean(name, names))
    specs = tuple(_input_spec(vi, source, shapes.get(vi.name)) for vi in graph_inputs)
    _check_shared_dims(graph_inputs, specs, source)
    return specs


#: dim_params that mean "unknown", not a name shared between dims (Paddle's exports write '?'
#: for PP-OCR's height and width)
_UNNAMED_DIMS = frozenset({"?", "-1"})


def _check_shared_dims(graph_inputs, specs, source) -> None:
    """A symbolic dim named in several inputs (e.g. 'batch') must be pinned to one value."""
    pinned: dict[str, tuple[int, str]] = {}
    for vi, spec in zip(graph_inputs, specs, strict=True):
        dims = vi.type.tensor_type.shape.dim
        for i, (dim, value) in enumerate(zip(dims, spec.shape, strict=False)):
            if not dim.dim_param or dim.dim_param in _UNNAMED_DIMS:
                continue
            first = pinned.setdefault(dim.dim_param, (value, vi.name))
            if first[0] != value:
                raise ShapeError(f"{source}: --input-shape {vi.name} dim {i} is {value}, but "
                                 f"'{dim.dim_param}' is {first[0]} in input '{first[1]}'",
                                 hint=f"the model names both dims '{dim.dim_param}'")


def _input_spec(vi: onnx.ValueInfoProto, source: str, override) -> TensorSpec:
    if not vi.type.HasField("tensor_type"):
        raise UnsupportedOpError(source, {"(model input)": [vi.name]},
                                 reasons={"(model input)": "a sequence, optional or map input "
                                                           "(accel runs on tensors)"})
    ttype = vi.type.tensor_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)).name
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in ttype.shape.dim]
    if override is not None:
        if ttype.HasField("shape") and len(override) != len(dims):
            raise ShapeError(f"{source}: --input-shape for '{vi.name}' has rank {len(override)}, "
                             f"the model's input has rank {len(dims)} {dims}")
        return TensorSpec(vi.name, tuple(override), dtype)
    if not ttype.HasField("shape"):
        raise ShapeError(f"{source}: input '{vi.name}' has no shape",
                         hint=f"give one with --input-shape {vi.name}=D0,D1,...")
    dynamic = [f"dim {i} ('{d}')" for i, d in enumerate(dims) if not isinstance(d, int) or d < 0]
    if dynamic:
        example = ",".join(str(d) if isinstance(d, int) and d >= 0 else "N" for d in dims)
        raise ShapeError(f"{source}: input '{vi.name}' has dynamic {', '.join(dynamic)} "
                         f"in shape {dims}",
                         hint=f"fix it with --input-shape {vi.name}={example} (N a number)")
    return TensorSpec(vi.name, tuple(dims), dtype)


def supported_ops() -> set[str]:
    """ONNX op types that the importer converts (TVM's map, accel's converters, If, Constant)."""
    from . import onnx_ops

    return set(onnx_ops.convert_map()) | onnx_ops.BUILTIN_OPS


def _walk_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _walk_nodes(sub)


def _check_ops(model: onnx.ModelProto, source: str) -> None:
    """Refuse, all at once, ops with no converter and op forms a guard knows to be wrong."""
    from . import onnx_ops
    from .onnx_graph import GraphInfo

    known = supported_ops()
    info = GraphInfo(model)
    missing: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    for i, node in enumerate(_walk_nodes(model.graph)):
        domain_ok = node.domain in _DEFAULT_DOMAINS
        op = node.op_type if domain_ok else f"{node.domain}::{node.op_type}"
        if not domain_ok or node.op_type not in known:
            reason = "no converter"
        else:
            checks = [*onnx_ops.GUARDS.get("*", ()), *onnx_ops.GUARDS.get(node.op_type, ())]
            reason = next(filter(None, (check(node, info) for check in checks)), None)
        if reason is not None:
            missing.setdefault(op, []).append(node.name or f"#{i}")
            reasons.setdefault(op, reason)
    if missing:
        raise UnsupportedOpError(source, missing, reasons=reasons)


def _convert(model: onnx.ModelProto, source: str, inputs: tuple[TensorSpec, ...]):
    from tvm.relax.frontend.onnx import from_onnx

    opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), None)
    shape_dict = {t.name: list(t.shape) for t in inputs}
    dtype_dict = {t.name: t.dtype for t in inputs}
    from . import onnx_ops

    try:
        # TVM prints every failing node's inputs to stdout before re-raising: keep that quiet
        with warnings.catch_warnings(), onnx_ops.installed(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return from_onnx(model, shape_dict=shape_dict, dtype_dict=dtype_dict, opset=opset,
                             keep_params_in_input=False)
    except onnx_ops.ConverterFailed as exc:
        from .onnx_if import branch_hint

        error = UnsupportedOpError(source, {exc.op: [exc.node]},
                                   reasons={exc.op: f"TVM's converter failed: {exc.message}"})
        error.hint = branch_hint(model, exc.node)
        raise error from exc
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise InvalidModelError(f"{source}: the ONNX importer failed: {first[:300]}") from exc

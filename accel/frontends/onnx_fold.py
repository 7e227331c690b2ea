"""Constant folding before import: Constant nodes, shapes of static values, constant-only nodes.

TVM's importer cannot take a shape computed in the graph (``Shape -> Gather -> Concat ->
Reshape``) nor every form of ``Constant``; with the input shapes pinned these are constants, so
they are evaluated here with ``onnx.reference`` (onnx's own evaluator) and become initializers.
Only nodes whose inputs are all constants are evaluated; nothing that depends on input data is.
"""

from __future__ import annotations

import contextlib

import numpy as np
import onnx
from onnx import numpy_helper

from .onnx_if import branch_taken, inline

#: ops never evaluated here: random, or with side inputs the reference cannot see
NEVER_FOLD = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                        "Bernoulli", "Multinomial", "Dropout", "If", "Loop", "Scan"})
#: constants above this many elements are not computed at import time
MAX_ELEMENTS = 1 << 16
#: folding rounds (each re-runs shape inference); nested Ifs need one round per level
MAX_ROUNDS = 12
_DEFAULT_DOMAINS = ("", "ai.onnx")


def fold_constants(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of ``model`` with constant-only nodes replaced by initializers, in subgraphs too,
    and each If with a constant condition replaced by its taken branch."""
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), 1)
    _drop_initializer_inputs(folded.graph)
    _normalize_constants(folded.graph)
    for _ in range(MAX_ROUNDS):  # a folded shape or inlined If can make more shapes static
        if not _fold_once(folded, shapes, opset):
            break
    return folded


_SCALAR_ATTRS = {"value_float": np.float32, "value_int": np.int64}
_LIST_ATTRS = {"value_floats": np.float32, "value_ints": np.int64}


def _normalize_constants(graph: onnx.GraphProto) -> None:
    """Rewrite Constant's value_float(s)/value_int(s) as a ``value`` tensor, in subgraphs too
    (TVM's converter reads only ``value``; subgraphs are not folded here)."""
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _normalize_constants(sub)
        if node.op_type != "Constant" or len(node.attribute) != 1:
            continue
        attr = node.attribute[0]
        if attr.name in _SCALAR_ATTRS:
            value = np.array(onnx.helper.get_attribute_value(attr), _SCALAR_ATTRS[attr.name])
        elif attr.name in _LIST_ATTRS:
            value = np.array(onnx.helper.get_attribute_value(attr), _LIST_ATTRS[attr.name])
        else:
            continue
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute("value", numpy_helper.from_array(value)))


def _drop_initializer_inputs(graph: onnx.GraphProto) -> None:
    """Old models list weights among the graph inputs; accel binds them as constants."""
    weights = {t.name for t in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)


def _fold_once(model: onnx.ModelProto, shapes: dict, opset: int) -> bool:
    graph = model.graph
    changed = _fold_graph(graph, {}, _static_shapes(model, shapes), opset)
    if changed:
        weights = {t.name for t in graph.initializer}
        used = {i for n in graph.node for i in _node_inputs(n)} | {o.name for o in graph.output}
        inputs = [vi for vi in graph.input if vi.name not in weights or vi.name in used]
        del graph.input[:]
        graph.input.extend(inputs)
    return changed


def _fold_graph(graph: onnx.GraphProto, outer: dict, static: dict, opset: int) -> bool:
    """Fold one graph in place, then the subgraphs of the nodes left (which see its constants);
    an If whose condition is constant is replaced by its taken branch."""
    consts = {**outer, **{t.name: numpy_helper.to_array(t) for t in graph.initializer}}
    kept, new, inlined = [], {}, False
    for node in graph.node:
        branch = _constant_if(node, consts)
        if branch is not None:
            nodes, weights = inline(node, branch)
            kept.extend(nodes)
            new.update(weights)
            inlined = True
            continue
        values = _evaluate(node, consts, static, opset)
        if values is None:
            kept.append(node)
            continue
        for name, value in zip(node.output, values, strict=False):
            if name:
                consts[name] = new[name] = value
    inner = [_fold_graph(sub, consts, static, opset) for node in kept for sub in _subgraphs(node)]
    if new or inlined:
        _replace(graph, kept, new)
    return bool(new) or inlined or any(inner)


def _constant_if(node, consts) -> onnx.GraphProto | None:
    if node.op_type != "If" or node.domain not in _DEFAULT_DOMAINS or node.input[0] not in consts:
        return None
    return branch_taken(node, consts[node.input[0]])


def _subgraphs(node: onnx.NodeProto):
    for attr in node.attribute:
        yield from ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)


def _replace(graph: onnx.GraphProto, nodes: list, new: dict[str, np.ndarray]) -> None:
    """Set the graph's nodes, add the new constants, drop initializers nothing reads any more."""
    used = {i for n in nodes for i in _node_inputs(n)} | {o.name for o in graph.output}
    initializers = [t for t in graph.initializer if t.name in used and t.name not in new]
    initializers += [numpy_helper.from_array(v, name) for name, v in new.items() if name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _node_inputs(node: onnx.NodeProto):
    """Every name a node reads, including the outer-scope names its subgraphs read."""
    yield from (i for i in node.input if i)
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in sub.node:
                yield from _node_inputs(inner)


def _static_shapes(model: onnx.ModelProto, shapes: dict) -> dict[str, tuple[int, ...]]:
    """Value name -> static shape, from onnx shape inference with the input shapes pinned."""
    pinned = onnx.ModelProto()
    pinned.CopyFrom(model)
    for vi in pinned.graph.input:
        if vi.name in shapes and vi.type.HasField("tensor_type"):
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[vi.name]:
                dims.add().dim_value = d
    with contextlib.suppress(Exception):  # on failure, keep what the model declares
        pinned = onnx.shape_inference.infer_shapes(pinned, data_prop=True)
    found = {}
    for vi in _value_infos(pinned.graph):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape") and all(
                d.HasField("dim_value") for d in t.shape.dim):
            found[vi.name] = tuple(d.dim_value for d in t.shape.dim)
    return found


def _value_infos(graph: onnx.GraphProto):
    """Every typed value of a graph and of its subgraphs (names are unique across scopes)."""
    yield from [*graph.input, *graph.value_info, *graph.output]
    for node in graph.node:
        for sub in _subgraphs(node):
            yield from _value_infos(sub)


def _evaluate(node, consts, static, opset) -> list[np.ndarray] | None:
    """The node's output values if it can be computed at import time, else None."""
    if node.domain not in _DEFAULT_DOMAINS or node.op_type in NEVER_FOLD:
        return None
    if node.op_type in ("Shape", "Size") and node.input[0] in static:
        return [_shape_value(node, static[node.input[0]])]
    inputs = [i for i in node.input if i]
    if node.op_type != "Constant" and (not inputs or any(i not in consts for i in inputs)):
        return None
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for a in node.attribute):
        return None
    if sum(consts[i].size for i in inputs) > MAX_ELEMENTS:
        return None
    return _run_reference(node, {i: consts[i] for i in inputs}, opset)


def _shape_value(node, shape: tuple[int, ...]) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(shape[slice(start, end)], dtype=np.int64)


def _run_reference(node, feeds, opset) -> list[np.ndarray] | None:
    from onnx.reference import ReferenceEvaluator

    try:
        outputs = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
    except Exception:  # leave anything the reference cannot do to TVM's importer
        return None
    if not all(isinstance(v, np.ndarray | np.generic) for v in outputs):
        return None  # sequences, optionals
    values = [np.asarray(v) for v in outputs]
    if any(v.size > MAX_ELEMENTS or v.dtype == object for v in values):
        return None
    return values

"""If with a condition known at import time: the taken branch is inlined into the enclosing graph.

Exporters guard shape-dependent code with ``If`` on ``Shape``/``Size`` comparisons (silero-vad:
"squeeze only if that dim is 1", "take the state path only if it has a batch"); once the input
shapes are pinned these conditions are constants, the untaken branch is dead, and inlining the
taken one lets the folding and TVM's converters see static shapes in it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def branch_taken(node: onnx.NodeProto, cond: np.ndarray) -> onnx.GraphProto | None:
    """The branch an If with this constant condition runs (None if it is not a one-element bool)."""
    if cond.size != 1:
        return None
    name = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    return next((a.g for a in node.attribute if a.name == name), None)


def inline(node: onnx.NodeProto, branch: onnx.GraphProto
           ) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    """The nodes that replace ``node`` and the branch's initializers (name -> value).

    The branch's own nodes keep their names (ONNX names are unique across scopes); each
    branch output is bound to the If's output name with an Identity.
    """
    weights = {t.name: numpy_helper.to_array(t) for t in branch.initializer}
    nodes = [_copy(n) for n in branch.node]
    for inner, outer in zip(branch.output, node.output, strict=False):
        if outer:
            nodes.append(onnx.helper.make_node("Identity", [inner.name], [outer],
                                               name=f"{node.name or outer}/inlined_{outer}"))
    return nodes, weights


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    copied = onnx.NodeProto()
    copied.CopyFrom(node)
    return copied


def branch_hint(model: onnx.ModelProto, node_name: str) -> str | None:
    """For a node that failed inside an If branch whose condition depends on graph inputs, a
    hint naming those inputs (binding them with --input-value drops the untaken branch)."""
    found = _enclosing_if(model.graph, node_name)
    if found is None:
        return None
    names = _input_ancestors(model.graph, found.input[0])
    if not names:
        return None
    example = " ".join(f"--input-value {n}=VALUE" for n in names)
    return (f"the node runs only in a branch of If '{found.name}', whose condition depends on "
            f"input(s) {', '.join(repr(n) for n in names)}; if your inputs do not take that "
            f"branch, bind them with {example}")


def _enclosing_if(graph: onnx.GraphProto, node_name: str) -> onnx.NodeProto | None:
    """The main-graph If whose branches (at any depth) contain a node of this name."""
    for node in graph.node:
        if node.op_type == "If" and any(_contains(a.g, node_name) for a in node.attribute
                                        if a.HasField("g")):
            return node
    return None


def _contains(graph: onnx.GraphProto, node_name: str) -> bool:
    return any(n.name == node_name or any(_contains(a.g, node_name) for a in n.attribute
                                          if a.HasField("g")) for n in graph.node)


def _input_ancestors(graph: onnx.GraphProto, name: str) -> list[str]:
    """The graph inputs a value is computed from."""
    producer = {o: n for n in graph.node for o in n.output}
    inputs = {vi.name for vi in graph.input}
    seen, todo, found = set(), [name], []
    while todo:
        value = todo.pop()
        if value in seen:
            continue
        seen.add(value)
        if value in inputs:
            found.append(value)
        elif value in producer:
            todo.extend(i for i in producer[value].input if i)
    return sorted(found)

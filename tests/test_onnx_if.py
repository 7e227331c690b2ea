"""If with a constant condition is inlined; --input-value binds inputs; both against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import accel
from accel.errors import ShapeError, UsageError
from accel.frontends.onnx_fold import fold_constants
from accel.signature import parse_value_option

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed ('accel[dev]')")
pytestmark = [pytest.mark.frontends]


def _branch(name: str, op: str, out: str) -> onnx.GraphProto:
    return helper.make_graph([helper.make_node(op, ["x", "x"], [out])], name, [],
                             [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])


def sr_model() -> onnx.ModelProto:
    """y = x + x when sr == 16000 else x * x; the condition is a model input."""
    nodes = [helper.make_node("Constant", [], ["k"], value=helper.make_tensor(
                 "k", TensorProto.INT64, [], [16000])),
             helper.make_node("Equal", ["sr", "k"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=_branch("t", "Add", "a"),
                              else_branch=_branch("e", "Mul", "m"))]
    graph = helper.make_graph(nodes, "g", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def shape_if_model() -> onnx.ModelProto:
    """Squeeze dim 0 only if it is 1 (the exporters' pattern), for a dynamic batch."""
    squeeze = helper.make_graph(
        [helper.make_node("Squeeze", ["x", "zero"], ["s"])], "t", [],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
        [helper.make_tensor("zero", TensorProto.INT64, [1], [0])])
    keep = helper.make_graph([helper.make_node("Identity", ["x"], ["i"])], "e", [],
                             [helper.make_tensor_value_info("i", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Constant", [], ["idx"], value_int=0),
             helper.make_node("Gather", ["shape", "idx"], ["n"]),
             helper.make_node("Constant", [], ["one"], value_int=1),
             helper.make_node("Equal", ["n", "one"], ["c"]),
             helper.make_node("If", ["c"], ["r"], then_branch=squeeze, else_branch=keep),
             helper.make_node("Constant", [], ["flat"], value_ints=[-1]),
             helper.make_node("Reshape", ["r", "flat"], ["f"]),
             helper.make_node("Shape", ["r"], ["y_shape"])]
    graph = helper.make_graph(nodes, "g", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, ["M"]),
         helper.make_tensor_value_info("y_shape", TensorProto.INT64, ["R"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def test_shape_if_is_inlined_per_pinned_shape():
    for n, taken, want_shape in ((1, "Squeeze", [4]), (3, "Identity", [3, 4])):
        folded = fold_constants(shape_if_model(), {"x": (n, 4)})
        ops = [node.op_type for node in folded.graph.node]
        assert "If" not in ops and ops[0] == taken
        assert [list(t.int64_data) or list(onnx.numpy_helper.to_array(t)) for t in
                folded.graph.initializer if t.name == "y_shape"] == [want_shape]
        x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
        module = accel.load(accel.compile(shape_if_model(), "host", options=accel.CompileOptions(
            input_shapes={"x": (n, 4)})).path)
        np.testing.assert_array_equal(np.array(module(x=x)[0]), x.reshape(-1))


@pytest.mark.e2e
def test_input_value_binds_and_picks_the_branch():
    model = sr_model()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for sr in (16000, 8000):
        module = accel.load(accel.compile(model, "host", options=accel.CompileOptions(
            input_values={"sr": (sr,)})).path)
        assert [t.name for t in module.inputs] == ["x"]
        want = session.run(None, {"x": x, "sr": np.array(sr, np.int64)})[0]
        np.testing.assert_allclose(np.array(module(x=x)[0]), want, rtol=1e-6)


@pytest.mark.e2e
def test_runtime_if_still_runs_both_ways():
    model = sr_model()
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    module = accel.load(accel.compile(model, "host").path)
    for sr in (16000, 8000):
        feeds = {"x": x, "sr": np.array(sr, np.int64)}
        np.testing.assert_allclose(np.array(module(**feeds)[0]),
                                   session.run(None, feeds)[0], rtol=1e-6)


def test_input_value_errors_name_the_input():
    with pytest.raises(ShapeError, match="unknown input 'rate'"):
        accel.compile(sr_model(), "host", options=accel.CompileOptions(
            input_values={"rate": (16000,)}))
    with pytest.raises(ShapeError, match="holds 1"):
        accel.compile(sr_model(), "host", options=accel.CompileOptions(
            input_values={"sr": (1, 2)}))


@pytest.mark.unit
def test_parse_value_option():
    assert parse_value_option("sr=16000") == ("sr", (16000.0,))
    assert parse_value_option("w=1,2.5") == ("w", (1.0, 2.5))
    with pytest.raises(UsageError):
        parse_value_option("sr=")

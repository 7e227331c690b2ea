"""accel.onnx_backend as an ONNX backend: devices, run_node, bound shape operands, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import accel.onnx_backend as backend
from accel.errors import UnsupportedOpError


def _model(nodes, inputs, outputs, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.unit
def test_backend_supports_only_the_host_cpu():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")


@pytest.mark.frontends
def test_run_node_wraps_one_node_and_runs_it():
    node = helper.make_node("Relu", ["x"], ["y"])
    x = np.array([[-1.0, 2.0]], np.float32)
    (y,) = backend.run_node(node, [x])
    np.testing.assert_array_equal(y, [[0.0, 2.0]])


@pytest.mark.frontends
def test_reshape_shape_given_as_input_is_bound_and_recompiled_per_value():
    model = _model([helper.make_node("Reshape", ["x", "s"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                    helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])])
    rep = backend.prepare(model)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert rep.run([x, np.array([3, 2])])[0].shape == (3, 2)
    assert rep.run([x, np.array([1, 6])])[0].shape == (1, 6)


@pytest.mark.frontends
def test_wrong_form_of_an_op_is_refused_naming_op_and_reason():
    model = _model([helper.make_node("NonMaxSuppression", ["b", "s"], ["y"])],
                   [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 4]),
                    helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1, 2])],
                   [helper.make_tensor_value_info("y", TensorProto.INT64, ["n", 3])])
    with pytest.raises(UnsupportedOpError) as info:
        backend.prepare(model)
    assert "NonMaxSuppression (TVM's result has a fixed, padded row count" in str(info.value)

"""Regenerates mobilenet_tiny.onnx, the bundled example: `python -m accel.examples.make_example`."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    """Accumulates nodes and seeded random weights for a small NCHW CNN."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.weights, self.count = [], [], 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def _weight(self, name: str, shape, scale: float) -> str:
        value = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def conv_bn_relu(self, x: str, cin: int, cout: int, *, k=3, stride=1, groups=1, relu=True):
        name = self._name("conv")
        w = self._weight(f"{name}.w", (cout, cin // groups, k, k), (2.0 / (cin * k * k)) ** 0.5)
        self.nodes.append(helper.make_node("Conv", [x, w], [f"{name}.y"], name=name,
                                           kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, group=groups))
        bn = f"{name}.bn"
        stats = {"scale": 1.0 + 0.1 * self.rng.standard_normal(cout),
                 "bias": 0.1 * self.rng.standard_normal(cout),
                 "mean": 0.1 * self.rng.standard_normal(cout),
                 "var": 0.5 + np.abs(self.rng.standard_normal(cout))}
        params = []
        for key, value in stats.items():
            params.append(f"{bn}.{key}")
            self.weights.append(numpy_helper.from_array(value.astype(np.float32), params[-1]))
        self.nodes.append(helper.make_node("BatchNormalization", [f"{name}.y", *params],
                                           [f"{bn}.y"], name=bn))
        if not relu:
            return f"{bn}.y"
        self.nodes.append(helper.make_node("Relu", [f"{bn}.y"], [f"{name}.r"], name=f"{name}.relu"))
        return f"{name}.r"

    def inverted_residual(self, x: str, cin: int, cout: int, stride: int, expand: int = 4) -> str:
        hidden = cin * expand
        y = self.conv_bn_relu(x, cin, hidden, k=1)
        y = self.conv_bn_relu(y, hidden, hidden, stride=stride, groups=hidden)
        y = self.conv_bn_relu(y, hidden, cout, k=1, relu=False)
        if stride == 1 and cin == cout:
            name = self._name("add")
            self.nodes.append(helper.make_node("Add", [x, y], [name], name=name))
            return name
        return y


def build() -> onnx.ModelProto:
    """The example: stem, four inverted-residual blocks, global pooling, classifier, softmax."""
    b = _Builder()
    y = b.conv_bn_relu("image", 3, 16, stride=2)
    for cin, cout, stride in ((16, 16, 1), (16, 24, 2), (24, 24, 1), (24, 32, 2)):
        y = b.inverted_residual(y, cin, cout, stride)
    b.nodes.append(helper.make_node("GlobalAveragePool", [y], ["pooled"], name="pool"))
    b.nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"))
    w = b._weight("fc.w", (32, 10), 0.2)
    bias = b._weight("fc.b", (10,), 0.1)
    b.nodes.append(helper.make_node("Gemm", ["flat", w, bias], ["logits"], name="fc"))
    b.nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        b.nodes, "mobilenet_tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 96, 96])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], b.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="accel.examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    from . import EXAMPLE

    onnx.save(build(), EXAMPLE)
    print(f"wrote {EXAMPLE}")

"""Models for the int8 tests: a small CNN trained here on scikit-learn's digits, as ONNX."""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BATCH = 50
TRAIN, TEST = 1300, 450


@functools.cache
def digits_split():
    """((x_train, y_train), (x_test, y_test)): 8x8 images in [0, 1], NCHW, a fixed shuffle."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:TRAIN], y[:TRAIN]), (x[TRAIN:TRAIN + TEST], y[TRAIN:TRAIN + TEST])


def _train():
    import torch

    (x, y), _ = digits_split()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(32 * 16, 10))
    opt = torch.optim.Adam(net.parameters(), 5e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(8):
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), 100):
            batch = order[i:i + 100]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            opt.step()
    return net.eval()


@functools.cache
def digits_cnn_bytes() -> bytes:
    """The trained CNN (Conv, BatchNormalization, Relu, Conv, Relu, Flatten, Gemm) as ONNX."""
    conv1, bn, _, conv2, _, _, fc = _train()
    arrays = {"w1": conv1.weight, "b1": conv1.bias, "g": bn.weight, "beta": bn.bias,
              "mean": bn.running_mean, "var": bn.running_var, "w2": conv2.weight,
              "b2": conv2.bias, "w3": fc.weight, "b3": fc.bias}
    inits = [numpy_helper.from_array(v.detach().numpy().astype(np.float32), k)
             for k, v in arrays.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["n1"],
                         name="bn1", epsilon=bn.eps),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1] * 4,
                         strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "digits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def digits_cnn() -> onnx.ModelProto:
    """A fresh copy of the trained digits CNN."""
    return onnx.load_from_string(digits_cnn_bytes())


def calibration_sets(count: int = 8) -> list[dict[str, np.ndarray]]:
    """``count`` batches of training images."""
    (x, _), _ = digits_split()
    return [{"x": x[i * BATCH:(i + 1) * BATCH]} for i in range(count)]


def accuracy(run) -> float:
    """Test-set accuracy of ``run(batch) -> logits``."""
    _, (x, y) = digits_split()
    pred = np.concatenate([np.asarray(run(x[i:i + BATCH])).argmax(1)
                           for i in range(0, TEST, BATCH)])
    return float((pred == y).mean())


def depthwise_conv1d_attention() -> onnx.ModelProto:
    """Depthwise Conv, Relu, Reshape, a Conv 1-D and a MatMul of two activations (x @ x^T)."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "dw"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "db"),
             numpy_helper.from_array(np.array([1, 4, 64], np.int64), "shape"),
             numpy_helper.from_array(rng.standard_normal((4, 4, 3)).astype(np.float32) * 0.3,
                                     "w1")]
    nodes = [
        helper.make_node("Conv", ["x", "dw", "db"], ["d"], name="depthwise", pads=[1] * 4,
                         group=4),
        helper.make_node("Relu", ["d"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["s"], name="reshape"),
        helper.make_node("Conv", ["s", "w1"], ["c"], name="conv1d", pads=[1, 1]),
        helper.make_node("Transpose", ["c"], ["t"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["c", "t"], ["y"], name="gram")]
    graph = helper.make_graph(
        nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model

"""Small test models built in code: ONNX graphs with onnx.helper, and torch modules."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def _seeded(build):
    """Rebuild the weights from the same seed on every call, so a model is the same each time."""

    def wrapper():
        global RNG
        RNG = np.random.default_rng(0)
        return build()

    wrapper.__doc__, wrapper.__name__ = build.__doc__, build.__name__
    return wrapper


def _w(name: str, shape, scale=0.5) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inputs, outputs, weights=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(weights))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@_seeded
def conv_block() -> onnx.ModelProto:
    """Conv + BatchNorm + Relu + MaxPool + depthwise conv + GlobalAveragePool + Gemm."""
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool1"),
        helper.make_node("Conv", ["p1", "wd"], ["d1"], pads=[1, 1, 1, 1], group=c, name="dw"),
        helper.make_node("Clip", ["d1", "lo", "hi"], ["r2"], name="relu6"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    weights = [_w("w1", (c, 3, 3, 3)), _w("b1", (c,)), _w("s", (c,)), _w("bb", (c,)),
               _w("m", (c,)), numpy_helper.from_array(np.abs(RNG.random(c)).astype(np.float32)
                                                      + 0.5, "v"),
               _w("wd", (c, 1, 3, 3)), numpy_helper.from_array(np.float32(0), "lo"),
               numpy_helper.from_array(np.float32(6), "hi"), _w("fw", (5, c)), _w("fb", (5,))]
    return _model(nodes, [_vi("x", [1, 3, 16, 16])], [_vi("y", [1, 5])], weights)


@_seeded
def mlp_two_inputs() -> onnx.ModelProto:
    """Two named inputs, two outputs: MatMul + Add + erf GELU, LayerNorm, Softmax, ReduceMean."""
    nodes = [
        helper.make_node("MatMul", ["a", "w"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "bias"], ["h"], name="add_bias"),
        helper.make_node("Div", ["h", "sqrt2"], ["hs"], name="gelu_div"),
        helper.make_node("Erf", ["hs"], ["e"], name="gelu_erf"),
        helper.make_node("Add", ["e", "one"], ["e1"], name="gelu_add"),
        helper.make_node("Mul", ["h", "e1"], ["he"], name="gelu_mul"),
        helper.make_node("Mul", ["he", "half"], ["g"], name="gelu_half"),
        helper.make_node("Add", ["g", "b"], ["s"], name="residual"),
        helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["ln"], axis=-1,
                         name="ln"),
        helper.make_node("Softmax", ["ln"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("ReduceMean", ["ln"], ["mean"], axes=[-1], keepdims=0, name="mean"),
    ]
    consts = {"sqrt2": np.sqrt(2), "one": 1.0, "half": 0.5}
    weights = [_w("w", (16, 16)), _w("bias", (16,)), _w("gamma", (16,)), _w("beta", (16,))] + \
        [numpy_helper.from_array(np.float32(v), k) for k, v in consts.items()]
    return _model(nodes, [_vi("a", [2, 4, 16]), _vi("b", [2, 4, 16])],
                  [_vi("probs", [2, 4, 16]), _vi("mean", [2, 4])], weights)


@_seeded
def int_input_embedding() -> onnx.ModelProto:
    """An int64 token input: Gather from an embedding table, then ReduceSum."""
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0, name="embed"),
             helper.make_node("ReduceSum", ["emb", "axes"], ["y"], keepdims=0, name="sum")]
    weights = [_w("table", (50, 8)),
               numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")]
    return _model(nodes, [_vi("ids", [1, 6], TensorProto.INT64)], [_vi("y", [1, 8])], weights)


def dynamic_batch() -> onnx.ModelProto:
    """Relu over an input whose batch dim is symbolic ('N')."""
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return _model(nodes, [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])


def unsupported_ops() -> onnx.ModelProto:
    """Two ops TVM's importer lacks (a custom-domain op and ai.onnx.ml's LinearRegressor are
    used so the model stays valid for the checker): each must be named with its node."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="ok_relu"),
             helper.make_node("MyCustomOp", ["r"], ["c"], domain="com.example", name="custom1"),
             helper.make_node("MyCustomOp", ["c"], ["d"], domain="com.example", name="custom2"),
             helper.make_node("Det", ["d"], ["y"], name="det1")]
    graph = helper.make_graph(nodes, "bad", [_vi("x", [3, 3])], [_vi("y", [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    return model


@_seeded
def ds_cnn_kws() -> onnx.ModelProto:
    """A keyword-spotting DS-CNN in the style of MLPerf Tiny (random weights): a 10x4 stride-2
    conv to 64 channels, 4 depthwise-separable blocks, average pooling, FC to 12 classes."""
    c, nodes = 64, []
    weights = [_w("w0", (c, 1, 10, 4), 0.3), _w("b0", (c,), 0.1)]
    nodes.append(helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], strides=[2, 2],
                                  pads=[4, 1, 5, 1], name="conv0"))
    nodes.append(helper.make_node("Relu", ["c0"], ["r0"], name="relu0"))
    prev = "r0"
    for i in range(1, 5):
        weights += [_w(f"dw{i}", (c, 1, 3, 3), 0.3), _w(f"s{i}", (c,), 0.2), _w(f"bb{i}", (c,)),
                    _w(f"m{i}", (c,), 0.1),
                    numpy_helper.from_array(np.abs(RNG.random(c)).astype(np.float32) + 0.5,
                                            f"v{i}"),
                    _w(f"pw{i}", (c, c, 1, 1), 0.15), _w(f"pb{i}", (c,), 0.1)]
        nodes += [
            helper.make_node("Conv", [prev, f"dw{i}"], [f"d{i}"], pads=[1, 1, 1, 1], group=c,
                             name=f"dw{i}"),
            helper.make_node("BatchNormalization", [f"d{i}", f"s{i}", f"bb{i}", f"m{i}", f"v{i}"],
                             [f"n{i}"], name=f"bn{i}"),
            helper.make_node("Relu", [f"n{i}"], [f"rd{i}"], name=f"relu_dw{i}"),
            helper.make_node("Conv", [f"rd{i}", f"pw{i}", f"pb{i}"], [f"p{i}"], name=f"pw{i}"),
            helper.make_node("Relu", [f"p{i}"], [f"rp{i}"], name=f"relu_pw{i}")]
        prev = f"rp{i}"
    weights += [_w("fw", (12, c), 0.2), _w("fb", (12,), 0.1)]
    nodes += [helper.make_node("AveragePool", [prev], ["g"], kernel_shape=[25, 5], name="pool"),
              helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1, name="fc"),
              helper.make_node("Softmax", ["logits"], ["y"], axis=-1, name="softmax")]
    return _model(nodes, [_vi("x", [1, 1, 49, 10])], [_vi("y", [1, 12])], weights)


ALL_ONNX = {"conv_block": conv_block, "mlp_two_inputs": mlp_two_inputs,
            "int_input_embedding": int_input_embedding}


def onnxruntime_outputs(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """Reference outputs from onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def feeds_for(model: onnx.ModelProto, seed: int = 1) -> dict[str, np.ndarray]:
    """Random inputs for every graph input: normal floats, small non-negative ints."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        if np.dtype(dtype).kind == "f":
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(0, 50, shape).astype(dtype)
    return feeds


@_seeded
def texture_conv() -> onnx.ModelProto:
    """Conv 4->8 + Relu + Conv 8->8 + Add: channels in multiples of 4, so Adreno's texture
    lowering (RGBA texels over channel blocks) applies to every conv."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Add", ["c2", "r1"], ["y"], name="residual")]
    weights = [_w("w1", (8, 4, 3, 3)), _w("b1", (8,)), _w("w2", (8, 8, 3, 3), 0.2), _w("b2", (8,))]
    return _model(nodes, [_vi("x", [1, 4, 8, 8])], [_vi("y", [1, 8, 8, 8])], weights)


def _conv_bn(nodes, weights, src, dst, cin, cout, *, k=3, stride=1, relu=True):
    """Conv (no bias) + BatchNorm (+ Relu), named after ``dst``."""
    weights += [_w(f"{dst}_w", (cout, cin, k, k), (2.0 / (cin * k * k)) ** 0.5),
                _w(f"{dst}_s", (cout,), 0.2), _w(f"{dst}_b", (cout,), 0.1),
                _w(f"{dst}_m", (cout,), 0.1),
                numpy_helper.from_array(np.abs(RNG.random(cout)).astype(np.float32) + 0.5,
                                        f"{dst}_v")]
    out = f"{dst}_bn" if relu else dst
    nodes += [helper.make_node("Conv", [src, f"{dst}_w"], [f"{dst}_c"], strides=[stride] * 2,
                               pads=[k // 2] * 4, name=f"{dst}_conv"),
              helper.make_node("BatchNormalization", [f"{dst}_c", f"{dst}_s", f"{dst}_b",
                                                      f"{dst}_m", f"{dst}_v"], [out],
                               name=f"{dst}_bnorm")]
    if relu:
        nodes.append(helper.make_node("Relu", [out], [dst], name=f"{dst}_relu"))


@_seeded
def resnet_tiny() -> onnx.ModelProto:
    """A small ResNet: stride-2 stem, two basic blocks (the second strided, with a 1x1
    projection), global average pooling and a 10-way classifier; 1x3x32x32 input."""
    nodes, weights = [], []
    _conv_bn(nodes, weights, "x", "stem", 3, 16, stride=2)
    _conv_bn(nodes, weights, "stem", "b1a", 16, 16)
    _conv_bn(nodes, weights, "b1a", "b1b", 16, 16, relu=False)
    nodes += [helper.make_node("Add", ["b1b", "stem"], ["b1s"], name="b1_add"),
              helper.make_node("Relu", ["b1s"], ["b1"], name="b1_relu")]
    _conv_bn(nodes, weights, "b1", "b2a", 16, 32, stride=2)
    _conv_bn(nodes, weights, "b2a", "b2b", 32, 32, relu=False)
    _conv_bn(nodes, weights, "b1", "b2p", 16, 32, k=1, stride=2, relu=False)
    nodes += [helper.make_node("Add", ["b2b", "b2p"], ["b2s"], name="b2_add"),
              helper.make_node("Relu", ["b2s"], ["b2"], name="b2_relu"),
              helper.make_node("GlobalAveragePool", ["b2"], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1, name="fc")]
    weights += [_w("fc_w", (10, 32), 0.2), _w("fc_b", (10,), 0.1)]
    return _model(nodes, [_vi("x", [1, 3, 32, 32])], [_vi("y", [1, 10])], weights)

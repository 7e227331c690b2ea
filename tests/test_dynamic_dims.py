"""Dynamic (symbolic) input dims at the compile API: pinned per compile, or a clear ShapeError."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accel
from accel import errors

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'accel[dev]')")
pytestmark = [pytest.mark.e2e, pytest.mark.frontends]


class SelfAttention(torch.nn.Module):
    """A projection and dot-product attention over a (batch, seq, 5) input, plus a residual."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(5, 3)

    def forward(self, x, y):
        h = self.proj(x)
        return (h @ h.transpose(1, 2)).softmax(-1) @ h + y


def _dynamic_program():
    torch.manual_seed(0)
    module = SelfAttention().eval()
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=100)
    dims = {0: batch, 1: seq}
    program = torch.export.export(module, (torch.randn(2, 6, 5), torch.randn(2, 6, 3)),
                                  dynamic_shapes={"x": dims, "y": dims})
    return module, program


def _options(**shapes):
    return accel.CompileOptions(input_shapes=shapes)


def test_torch_dynamic_batch_and_seq_compile_at_each_pinned_size(tmp_path):
    module, program = _dynamic_program()
    rng = torch.Generator().manual_seed(1)
    for batch, seq in [(1, 4), (3, 9)]:
        x, y = torch.randn(batch, seq, 5, generator=rng), torch.randn(batch, seq, 3, generator=rng)
        artifact = accel.compile(program, "host", output=tmp_path / f"{batch}x{seq}.accel",
                                 options=_options(x=x.shape, y=y.shape))
        assert [s.shape for s in artifact.inputs] == [(batch, seq, 5), (batch, seq, 3)]
        with torch.no_grad():
            expected = module(x, y).numpy()
        got = accel.load(artifact.path)(x.numpy(), y.numpy())[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_torch_dynamic_dims_without_shapes_name_each_dim_and_the_fix():
    _, program = _dynamic_program()
    with pytest.raises(errors.ShapeError) as info:
        accel.compile(program, "host")
    message = str(info.value)
    for part in ("input 'x'", "dim 0 (", "dim 1 (", "exported range [0, 64]",
                 "exported range [0, 100]", "--input-shape x=N,N,5"):
        assert part in message, message


@pytest.mark.parametrize("shapes,match", [
    ({"x": (2, 6, 5), "y": (3, 6, 3)}, r"y dim 0 is 3, but another input pins .* to 2"),
    ({"x": (2, 600, 5), "y": (2, 600, 3)}, r"x dim 1 is 600, outside the exported range"),
    ({"x": (2, 6, 4), "y": (2, 6, 3)}, r"x dim 2 is 4, but the program was exported with the "
                                       r"static size 5"),
    ({"x": (2, 6), "y": (2, 6, 3)}, r"'x' has rank 2, the program's input has rank 3"),
    ({"z": (1,)}, r"unknown input 'z' \(valid: x, y\)"),
])
def test_torch_input_shapes_that_contradict_the_export_are_refused(shapes, match):
    _, program = _dynamic_program()
    with pytest.raises(errors.ShapeError, match=match):
        accel.compile(program, "host", options=_options(**shapes))


def test_saved_pt2_with_a_dynamic_batch_takes_input_shapes(tmp_path):
    module, program = _dynamic_program()
    torch.export.save(program, tmp_path / "dyn.pt2")
    x, y = torch.randn(4, 6, 5), torch.randn(4, 6, 3)
    artifact = accel.compile(tmp_path / "dyn.pt2", output=tmp_path / "d.accel",
                             options=_options(x=(4, 6, 5), y=(4, 6, 3)))
    with torch.no_grad():
        expected = module(x, y).numpy()
    np.testing.assert_allclose(accel.load(artifact.path)(x.numpy(), y.numpy())[0], expected,
                               rtol=1e-4, atol=1e-5)


def _onnx_dynamic_seq() -> onnx.ModelProto:
    """MatMul of a (batch, seq, 4) input with a weight, then Softmax over seq."""
    weight = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Softmax", ["h"], ["y"], axis=1, name="softmax")]
    graph = helper.make_graph(
        nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", 3])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_onnx_dynamic_batch_and_seq_compile_at_each_pinned_size(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    model = _onnx_dynamic_seq()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    for shape in [(1, 5, 4), (2, 11, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        artifact = accel.compile(model, "host", output=tmp_path / f"{shape[1]}.accel",
                                 options=_options(x=shape))
        module = accel.load(artifact.path)
        np.testing.assert_allclose(module(x)[0], session.run(None, {"x": x})[0],
                                   rtol=1e-4, atol=1e-6)
        with pytest.raises(errors.InputError):
            module(rng.standard_normal((shape[0], shape[1] + 1, 4)).astype(np.float32))


def test_onnx_dynamic_dims_without_shapes_name_each_dim():
    with pytest.raises(errors.ShapeError) as info:
        accel.compile(_onnx_dynamic_seq(), "host")
    message = str(info.value)
    for part in ("input 'x'", "dim 0 ('B')", "dim 1 ('T')", "--input-shape x=N,N,4"):
        assert part in message, message


def _onnx_two_inputs_sharing_batch() -> onnx.ModelProto:
    """x + y, both (B, 3), B one symbolic dim named in two inputs."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"], name="add")], "shared",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", 3]) for n in ("x", "y")],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_onnx_dim_shared_by_two_inputs_must_be_pinned_to_one_value(tmp_path):
    model = _onnx_two_inputs_sharing_batch()
    with pytest.raises(errors.ShapeError, match=r"y dim 0 is 5, but 'B' is 2 in input 'x'"):
        accel.compile(model, "host", options=_options(x=(2, 3), y=(5, 3)))
    artifact = accel.compile(model, "host", output=tmp_path / "s.accel",
                             options=_options(x=(5, 3), y=(5, 3)))
    x, y = np.ones((5, 3), np.float32), np.arange(15, dtype=np.float32).reshape(5, 3)
    np.testing.assert_array_equal(accel.load(artifact.path)(x, y)[0], x + y)


def test_onnx_unnamed_dims_are_not_one_shared_dim(tmp_path):
    """Paddle's exports write '?' for every unknown dim (PP-OCR's H and W): not a shared name."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["z"], name="relu")], "unnamed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "?", "?"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, "?", "?"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    artifact = accel.compile(model, "host", output=tmp_path / "u.accel",
                             options=_options(x=(1, 2, 3)))
    x = np.arange(-3, 3, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(accel.load(artifact.path)(x)[0], np.maximum(x, 0))


def test_static_and_dynamic_exports_of_one_module_never_share_a_cache_entry(tmp_path):
    """Their graph code is the same; the digest must still tell them apart."""
    from accel.frontends.torch import program_digest

    module, dynamic = _dynamic_program()
    static = torch.export.export(module, (torch.randn(2, 6, 5), torch.randn(2, 6, 3)))
    assert program_digest(static) != program_digest(dynamic)
    accel.compile(static, "host")  # fills the cache
    with pytest.raises(errors.ShapeError, match="dynamic dim 0"):
        accel.compile(dynamic, "host")

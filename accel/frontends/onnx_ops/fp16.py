"""MatMul, Conv and Softmax on float16 accumulate in float32 (as numpy does), round to float16."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from . import converter
from ._util import dtype


def _widened(original: type) -> type:
    """A converter class running ``original`` on float32 copies of float16 inputs."""
    def convert(bb, inputs, attr, params, impl):
        if not any(x is not None and dtype(x) == "float16" for x in inputs):
            return impl(bb, inputs, attr, params)
        wide = onnx_frontend.onnx_input()
        for x in inputs:
            wide.append(bb.emit(relax.op.astype(x, "float32"))
                        if x is not None and dtype(x) == "float16" else x)
        out = bb.normalize(impl(bb, wide, attr, params))
        return relax.op.astype(out, "float16")

    def get_converter(opset):
        impl = original.get_converter(opset)
        return lambda bb, inputs, attr, params: convert(bb, inputs, attr, params, impl)

    return type(f"Float32{original.__name__}", (), {"get_converter": staticmethod(get_converter)})


converter("MatMul")(_widened(onnx_frontend.MatMul))
converter("Conv")(_widened(onnx_frontend.Conv))
converter("Softmax")(_widened(onnx_frontend.Softmax))

"""ReduceSum and ReduceMean on float32 accumulate in float64, then round to float32.

TVM's reduction adds the elements one after the other, an error growing with the axis length
(about n ulp); onnxruntime's vectorized tree sum stays near the last ulp. Models that compute a
variance as E[x^2] - E[x]^2 (Magika's LayerNorm) cancel most digits, so the difference grew to
3e-3 in Magika's scores; in float64 it is gone (the cast fuses into the reduction's loop).
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from . import converter
from ._util import dtype


def _float64_sum(original: type) -> type:
    """A converter class running ``original`` on a float64 copy of a float32 data input."""
    def convert(bb, inputs, attr, params, impl):
        data = inputs[0]
        if data is None or dtype(data) != "float32":
            return impl(bb, inputs, attr, params)
        wide = onnx_frontend.onnx_input()
        wide.append(bb.emit(relax.op.astype(data, "float64")))
        for x in list(inputs)[1:]:
            wide.append(x)
        out = bb.normalize(impl(bb, wide, attr, params))
        return relax.op.astype(out, "float32")

    def get_converter(opset):
        impl = original.get_converter(opset)
        return lambda bb, inputs, attr, params: convert(bb, inputs, attr, params, impl)

    return type(f"Float64{original.__name__}", (), {"get_converter": staticmethod(get_converter)})


converter("ReduceSum")(_float64_sum(onnx_frontend.ReduceSum))
converter("ReduceMean")(_float64_sum(onnx_frontend.ReduceMean))

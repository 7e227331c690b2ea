"""--input-value: graph inputs bound to constants before folding (say, silero-vad's sample rate)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ShapeError, did_you_mean


def bind_values(model: onnx.ModelProto, values: dict[str, tuple], source: str,
                shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of ``model`` whose named inputs are initializers of these values, in the input's
    dtype and shape (its --input-shape, else the declared one; a dynamic 1-D input takes all)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = {vi.name: vi for vi in model.graph.input if vi.name not in weights}
    arrays = {name: _array(inputs, name, vs, source, shapes.get(name))
              for name, vs in values.items()}
    return as_initializers(model, arrays)


def as_initializers(model: onnx.ModelProto, arrays: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` in which these graph inputs are initializers holding these arrays."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    kept = [vi for vi in bound.graph.input if vi.name not in arrays]
    del bound.graph.input[:]
    bound.graph.input.extend(kept)
    bound.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in arrays.items())
    return bound


def _array(inputs: dict, name: str, vs: tuple, source: str, shape) -> np.ndarray:
    if name not in inputs:
        raise ShapeError(f"{source}: --input-value names unknown input '{name}'",
                         hint=did_you_mean(name, list(inputs)))
    ttype = inputs[name].type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)
    array = np.asarray(vs, dtype=dtype)
    dims = list(shape) if shape is not None else \
        [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
    if (shape is not None or ttype.HasField("shape")) and None not in dims:
        if int(np.prod(dims, dtype=np.int64)) != array.size:
            raise ShapeError(f"{source}: --input-value for '{name}' has {array.size} value(s), "
                             f"the input's shape {dims} holds {int(np.prod(dims))}")
        return array.reshape(dims)
    if ttype.HasField("shape") and len(dims) != 1:
        raise ShapeError(f"{source}: --input-value for '{name}': the input has dynamic shape "
                         f"{dims}", hint=f"give its shape too with --input-shape {name}=...")
    return array

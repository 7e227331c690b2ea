"""GraphInfo: what guards and converters need to know about an ONNX graph's values."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


class GraphInfo:
    """Types (after onnx shape inference), constant values and the opset of one model."""

    def __init__(self, model: onnx.ModelProto):
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # a model shape inference rejects still gets its declared types
            inferred = model
        graph = inferred.graph
        self._types = {vi.name: vi.type for vi in [*graph.input, *graph.value_info,
                                                    *graph.output]}
        self._consts = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                attr = next((a for a in node.attribute if a.name == "value"), None)
                if attr is not None:
                    self._consts[node.output[0]] = attr.t
        #: names of the graph's inputs and outputs
        self.boundary = {vi.name for vi in [*graph.input, *graph.output]}
        for t in graph.initializer:
            self._types.setdefault(t.name, onnx.helper.make_tensor_type_proto(t.data_type,
                                                                              t.dims))

    def elem_type(self, name: str) -> int | None:
        """The ONNX element type of a value (TensorProto.FLOAT, ...), or None if unknown."""
        t = self._types.get(name)
        if t is not None and t.HasField("tensor_type"):
            return t.tensor_type.elem_type
        return None

    def is_tensor(self, name: str) -> bool:
        """Whether a value is known to be a tensor (not a sequence, optional or map)."""
        t = self._types.get(name)
        return t is None or t.HasField("tensor_type")

    def shape(self, name: str) -> tuple | None:
        """The shape (ints, or None for unknown dims), or None if the rank is unknown."""
        t = self._types.get(name)
        if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else None
                     for d in t.tensor_type.shape.dim)

    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output, else None."""
        t = self._consts.get(name)
        return None if t is None else numpy_helper.to_array(t)

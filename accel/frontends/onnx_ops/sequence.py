"""SequenceInsert: a negative position counts from the back as Python's list.insert (TVM's
is one off)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import const_value


@converter("SequenceInsert")
class SequenceInsert(OnnxOpConverter):
    """Insert into the tuple of tensors at a constant position (default: the end)."""

    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        items = list(inputs[0])
        position = len(items)
        if len(inputs) > 2 and inputs[2] is not None:
            value = const_value(inputs[2], params)
            if value is None:
                raise NotImplementedError("a position that is not constant")
            position = int(value)
            position += len(items) if position < 0 else 0
        if not 0 <= position <= len(items):
            raise ValueError(f"position {position} out of range for {len(items)} tensors")
        items.insert(position, inputs[1])
        return relax.Tuple(items)

"""Small helpers shared by accel's ONNX converters (dtype and rank of a Relax expression)."""

from __future__ import annotations


def dtype(expr) -> str:
    """The element dtype of a tensor-typed Relax expression, e.g. 'float32'."""
    return str(expr.ty.dtype)


def bits(expr) -> int:
    """Bits per element of a tensor-typed Relax expression."""
    import tvm

    return tvm.DataType(dtype(expr)).bits


def ndim(expr) -> int:
    """The rank of a tensor-typed Relax expression."""
    return int(expr.ty.ndim)


def attr_str(attr: dict, name: str, default: str) -> str:
    """A string attribute (TVM's importer keeps them as bytes)."""
    value = attr.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def shape(bb, expr) -> tuple[int, ...]:
    """The static shape of a Relax expression (normalized first)."""
    expr = bb.normalize(expr)
    return tuple(int(d) for d in expr.ty.shape.values)


def const_value(expr, params):
    """The numpy value of a constant input (initializer or folded), or None."""
    import tvm
    from tvm.relax.frontend.onnx.onnx_frontend import get_constant

    value = get_constant(expr, params)
    return value.value.numpy() if isinstance(value, tvm.ir.GenericConst) else None

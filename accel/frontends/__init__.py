"""Model importers (ONNX, PyTorch); each is imported lazily, never by the production load path."""

from __future__ import annotations


def relax_outputs(mod, names: list[str] | None = None):
    """Read the output TensorSpecs off a Relax module's ``main`` (static shapes only)."""
    from tvm import relax

    from ..signature import TensorSpec

    ret = mod["main"].ret_ty
    fields = list(ret.fields) if not isinstance(ret, relax.TensorType) else [ret]
    names = names or [f"output{i}" for i in range(len(fields))]
    return tuple(TensorSpec(name, *static_tensor_info(ty, f"output '{name}'"))
                 for name, ty in zip(names, fields, strict=True))


def static_tensor_info(ty, what: str) -> tuple[tuple[int, ...], str]:
    """(shape, dtype) of a Relax tensor type with a static shape; ShapeError naming ``what``."""
    from tvm import relax

    from ..errors import ShapeError

    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise ShapeError(f"{what} is not a tensor with a static shape ({ty})")
    dims = [getattr(d, "value", None) for d in ty.shape.values]
    if any(d is None for d in dims):
        raise ShapeError(f"{what} has a dynamic shape {ty.shape}",
                         hint="pin the input shapes with --input-shape")
    return tuple(int(d) for d in dims), str(ty.dtype)

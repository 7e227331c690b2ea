"""Model importers (ONNX, PyTorch); each is imported lazily, never by the production load path."""

from __future__ import annotations


def relax_outputs(mod, names: list[str] | None = None):
    """Read the output TensorSpecs off a Relax module's ``main`` (static shapes only)."""
    from tvm import relax

    from ..errors import ShapeError
    from ..signature import TensorSpec

    ret = mod["main"].ret_ty
    fields = list(ret.fields) if not isinstance(ret, relax.TensorType) else [ret]
    names = names or [f"output{i}" for i in range(len(fields))]
    specs = []
    for name, ty in zip(names, fields, strict=True):
        if not isinstance(ty, relax.TensorType) or ty.shape is None:
            raise ShapeError(f"output '{name}' has no static tensor type ({ty})")
        dims = [getattr(d, "value", None) for d in ty.shape.values]
        if any(d is None for d in dims):
            raise ShapeError(f"output '{name}' has a dynamic shape {ty.shape}",
                             hint="pin the input shapes with --input-shape")
        specs.append(TensorSpec(name, tuple(int(d) for d in dims), str(ty.dtype)))
    return tuple(specs)

"""Quantizable sites of a Relax function: float conv1d/conv2d and matmul, named in graph order."""

from __future__ import annotations

import dataclasses

import tvm
from tvm import relax

CONV_OPS = {"relax.nn.conv1d": "conv1d", "relax.nn.conv2d": "conv2d"}


@dataclasses.dataclass(frozen=True)
class Site:
    """One conv or matmul binding: its stable name and what its inputs are."""

    name: str          # e.g. conv2d_0, matmul_3 (op kind and position among all sites)
    var: relax.Var     # the binding's variable
    call: relax.Call
    weight_axis: int | None  # output-channel axis of the constant weight; None: two activations

    @property
    def activations(self) -> list[relax.Expr]:
        """The inputs observed during calibration."""
        return [self.call.args[0]] if self.weight_axis is not None else list(self.call.args)

    @property
    def kind(self) -> str:
        """conv1d, conv2d or matmul."""
        return self.name.rsplit("_", 1)[0]


def is_const(expr) -> bool:
    """A bound constant (weights are constants after import)."""
    return isinstance(expr, tvm.ir.GenericConst)


def dtype_of(expr) -> str:
    """The element type of a tensor-typed expression, '' otherwise."""
    ty = getattr(expr, "ty", None)
    return str(ty.dtype) if isinstance(ty, relax.TensorType) else ""


def _site_kind(call) -> tuple[str, int | None] | None:
    """(kind, weight output-channel axis) when ``call`` is a float conv or matmul."""
    if not isinstance(call, relax.Call) or not isinstance(call.op, tvm.ir.Op):
        return None
    name = call.op.name
    if name not in CONV_OPS and name != "relax.matmul":
        return None
    data, weight = call.args[0], call.args[1]
    if dtype_of(data) != "float32" or dtype_of(weight) != "float32" or \
            dtype_of(call) != "float32" or is_const(data):
        return None
    if name in CONV_OPS:
        if not is_const(weight):
            return None
        return CONV_OPS[name], call.attrs.kernel_layout.index("O")
    if is_const(weight):
        return ("matmul", len(weight.value.shape) - 1) if len(weight.value.shape) == 2 else None
    return "matmul", None


def find_sites(func: relax.Function) -> list[Site]:
    """Every quantizable binding of ``func``, in binding order."""
    sites = []
    for block in func.body.blocks:
        for binding in block.bindings:
            if not isinstance(binding, relax.VarBinding):
                continue
            found = _site_kind(binding.value)
            if found is not None:
                kind, axis = found
                sites.append(Site(f"{kind}_{len(sites)}", binding.var, binding.value, axis))
    return sites


def source_names(func: relax.Function, layers) -> dict[str, str]:
    """Site name -> the frontend's layer name (e.g. the ONNX node), when the function's convs
    and matmuls are exactly the frontend's ``layers`` (kind, name) in order; else empty."""
    calls = [b.value for block in func.body.blocks for b in block.bindings
             if isinstance(b, relax.VarBinding) and isinstance(b.value, relax.Call)
             and isinstance(b.value.op, tvm.ir.Op)
             and (b.value.op.name in CONV_OPS or b.value.op.name == "relax.matmul")]
    kinds = ["conv" if c.op.name in CONV_OPS else "matmul" for c in calls]
    names = [name for _, name in layers]
    if kinds != [kind for kind, _ in layers] or not all(names) or \
            len(set(names)) != len(names):
        return {}
    by_call = dict(zip(calls, names, strict=True))
    return {s.name: by_call[s.call] for s in find_sites(func)}

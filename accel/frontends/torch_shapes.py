"""Input shapes of a torch.export program: static specs, and pinning its dynamic (Dim) dims."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, did_you_mean
from ..signature import TensorSpec


def user_placeholders(program) -> list:
    """The graph's placeholder nodes that are user inputs, in signature order."""
    user_inputs = set(program.graph_signature.user_inputs)
    return [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs]


def input_specs(program, source: str, shapes: dict[str, tuple[int, ...]]
                ) -> tuple[tuple[TensorSpec, ...], dict[str, int]]:
    """Static input specs and the {symbol: value} binding that pins every dynamic dim.

    A dynamic dim with no ``shapes`` entry is a ShapeError naming the input, the dim and the
    ``--input-shape`` that fixes it.
    """
    nodes = user_placeholders(program)
    names = [n.name for n in nodes]
    for name in shapes:
        if name not in names:
            raise ShapeError(f"{source}: --input-shape names unknown input '{name}'",
                             hint=did_you_mean(name, names))
    binding: dict[str, int] = {}
    specs = tuple(_spec(node, source, shapes.get(node.name), binding, program) for node in nodes)
    return specs, binding


def _spec(node, source, override, binding, program) -> TensorSpec:
    val = node.meta["val"]
    dims = list(val.shape)
    dtype = np.dtype(str(val.dtype).removeprefix("torch.")).name
    if override is None:
        dynamic = [f"dim {i} ({d}{_range(program, d)})" for i, d in enumerate(dims)
                   if not isinstance(d, int)]
        if dynamic:
            example = ",".join(str(d) if isinstance(d, int) else "N" for d in dims)
            raise ShapeError(f"{source}: input '{node.name}' has dynamic {', '.join(dynamic)} "
                             f"in shape {_show(dims)}; accel compiles static shapes",
                             hint=f"fix it with --input-shape {node.name}={example} "
                                  "(N a number), or CompileOptions(input_shapes=...)")
        return TensorSpec(node.name, tuple(dims), dtype)
    if len(override) != len(dims):
        raise ShapeError(f"{source}: --input-shape for '{node.name}' has rank {len(override)}, "
                         f"the program's input has rank {len(dims)} {_show(dims)}")
    for i, (dim, value) in enumerate(zip(dims, override, strict=True)):
        _pin(node.name, i, dim, int(value), binding, program, source)
    return TensorSpec(node.name, tuple(int(v) for v in override), dtype)


def _pin(name, index, dim, value, binding, program, source) -> None:
    """Check one overridden dim against the export: equal if static, in range if symbolic."""
    where = f"{source}: --input-shape {name} dim {index}"
    if isinstance(dim, int):
        if dim != value:
            raise ShapeError(f"{where} is {value}, but the program was exported with the static "
                             f"size {dim}", hint="export it with a torch.export.Dim there")
        return
    expr = dim.node.expr
    if not expr.is_Symbol:
        raise ShapeError(f"{where}: the exported size is the expression {expr}; pin the plain "
                         "dims it is computed from instead")
    symbol = str(expr)
    low, high = _bounds(program, expr)
    if not low <= value <= high:
        raise ShapeError(f"{where} is {value}, outside the exported range of {symbol} "
                         f"[{low}, {high}]")
    if binding.setdefault(symbol, value) != value:
        raise ShapeError(f"{where} is {value}, but another input pins the same exported dim "
                         f"{symbol} to {binding[symbol]}")


def _bounds(program, expr) -> tuple[int | float, int | float]:
    vr = program.range_constraints.get(expr)
    if vr is None:
        return 0, float("inf")
    return _finite(vr.lower, 0), _finite(vr.upper, float("inf"))


def _finite(bound, default):
    """A range bound as an int; torch's int_oo claims is_finite, so test is_Integer."""
    return int(bound) if getattr(bound, "is_Integer", False) else default


def _range(program, dim) -> str:
    expr = dim.node.expr
    if not expr.is_Symbol:
        return ""
    low, high = _bounds(program, expr)
    return f", exported range [{low}, {high}]"


def _show(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def bind_dims(mod, binding: dict[str, int]):
    """Replace the pinned symbolic dims in ``main`` by their values (shapes become static)."""
    if not binding:
        return mod
    from tvm import relax

    mod = relax.transform.BindSymbolicVars(binding, func_name="main")(mod)
    return relax.transform.CanonicalizeBindings()(mod)

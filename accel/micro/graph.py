"""The kernel graph: Relax ``main`` after fusion walked into ordered kernel calls over buffers."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import CompileError
from ..frontends import static_tensor_info

#: Buffer kinds: graph inputs and outputs live in the caller's memory, weights in flash,
#: temps (and per-kernel workspaces) in the arena.
KINDS = ("input", "output", "weight", "temp")


@dataclasses.dataclass(frozen=True)
class Buffer:
    """One storage: several Relax values may share it (reshapes are views, not copies)."""

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    kind: str
    #: Index into the model's inputs or outputs, for those kinds.
    io_index: int | None = None

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class KernelCall:
    """A call of one PrimFunc with buffer ids (inputs first, then outputs: DPS order)."""

    kernel: str
    args: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Graph:
    """Everything model.c needs: buffers, calls in order, weights, and output copies."""

    buffers: tuple[Buffer, ...]
    calls: tuple[KernelCall, ...]
    weights: dict[int, np.ndarray]
    #: (output index, source buffer id) for outputs that are not written by a kernel in place.
    copies: tuple[tuple[int, int], ...]
    kernels: Any  # IRModule of the PrimFuncs that are called


class _Walker:
    """Maps Relax values to buffers while visiting ``main``'s bindings in order."""

    def __init__(self, mod, input_names, output_names):
        self.mod, self.output_names = mod, output_names
        self.input_names = input_names
        self.buffers: list[Buffer] = []
        self.calls: list[KernelCall] = []
        self.weights: dict[int, np.ndarray] = {}
        self.values: dict[Any, Any] = {}  # relax Var -> buffer id, or tuple of ids

    def new(self, name, shape, dtype, kind, io_index=None) -> int:
        self.buffers.append(Buffer(len(self.buffers), name, shape, dtype, kind, io_index))
        return len(self.buffers) - 1

    def operand(self, expr):
        import tvm
        from tvm import relax

        if isinstance(expr, tvm.ir.GenericConst):
            data = expr.value.numpy()
            bid = self.new(f"w{len(self.weights)}", tuple(data.shape), str(data.dtype), "weight")
            self.weights[bid] = data
            return bid
        if isinstance(expr, relax.Var):
            return self.values[expr]
        if isinstance(expr, relax.Tuple):
            return tuple(self.operand(f) for f in expr.fields)
        raise CompileError(f"cannot lower a {type(expr).__name__} operand to C: {expr}")

    def bind(self, var, value) -> None:
        from tvm import relax

        if isinstance(value, relax.Call):
            self.values[var] = self.call(var, value)
        elif isinstance(value, relax.TupleGetItem):
            self.values[var] = self.operand(value.tuple_value)[value.index]
        else:
            self.values[var] = self.operand(value)

    def call(self, var, call):
        import tvm

        name = call.op.name if isinstance(call.op, tvm.ir.Op) else str(call.op)
        if name == "relax.reshape":  # a view: same storage, new shape
            return self.operand(call.args[0])
        if name != "relax.call_tir":
            raise CompileError(f"operator '{name}' (value {var.name}) has no TIR kernel "
                               "and cannot be lowered to the C package")
        if len(call.args) > 2:
            raise CompileError(f"kernel {call.args[0].name_hint} takes symbolic shape "
                               "arguments; the C package needs static shapes")
        kernel = call.args[0].name_hint
        args = tuple(self.operand(a) for a in call.args[1].fields)
        outs = self.outputs_of(var, call)
        self.calls.append(KernelCall(kernel, args + outs, outs))
        return outs[0] if len(outs) == 1 and not self.is_tuple(call.ty) else outs

    @staticmethod
    def is_tuple(ty) -> bool:
        from tvm import relax

        return isinstance(ty, relax.TupleType)

    def outputs_of(self, var, call) -> tuple[int, ...]:
        tys = list(call.ty.fields) if self.is_tuple(call.ty) else [call.ty]
        return tuple(self.new(f"{var.name}_{i}" if len(tys) > 1 else var.name,
                              *static_tensor_info(ty, f"value {var.name}"), "temp")
                     for i, ty in enumerate(tys))


def lower_graph(mod, *, inputs: list[str], outputs: list[str]) -> Graph:
    """Walk ``main`` of a fused, legalized Relax module into a :class:`Graph`."""
    import tvm
    from tvm import relax

    func = mod["main"]
    walker = _Walker(mod, inputs, outputs)
    for i, (param, name) in enumerate(zip(func.params, inputs, strict=True)):
        walker.values[param] = walker.new(name, *static_tensor_info(param.ty, f"input {name}"),
                                          "input", i)
    for block in func.body.blocks:
        for binding in block.bindings:
            if not isinstance(binding, relax.VarBinding):
                raise CompileError(f"cannot lower a {type(binding).__name__} to C")
            walker.bind(binding.var, binding.value)
    result = walker.operand(func.body.body)
    results = result if isinstance(result, tuple) else (result,)
    buffers, copies = _assign_outputs(walker.buffers, results, outputs)
    used = {c.kernel for c in walker.calls}
    kernels = tvm.IRModule({gv: f.with_attr("global_symbol", gv.name_hint)
                            for gv, f in mod.functions.items() if gv.name_hint in used})
    return Graph(tuple(buffers), tuple(walker.calls), walker.weights, tuple(copies), kernels)


def _assign_outputs(buffers, results, names):
    """Outputs written by a kernel use the caller's buffer in place; the others are copied."""
    buffers, copies = list(buffers), []
    for index, (bid, name) in enumerate(zip(results, names, strict=True)):
        buf = buffers[bid]
        if buf.kind == "temp":
            buffers[bid] = dataclasses.replace(buf, name=name, kind="output", io_index=index)
        else:
            copies.append((index, bid))
    return buffers, copies

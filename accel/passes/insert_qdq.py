"""InsertQDQ: quantize/dequantize pairs on the inputs of calibrated conv and matmul sites."""

from __future__ import annotations

import dataclasses

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..quantize.sites import find_sites


@dataclasses.dataclass(frozen=True)
class SiteQuant:
    """How one site is quantized: (scale, dtype) per activation input, and its int8 weight."""

    activations: tuple[tuple[float, str], ...]
    weight: np.ndarray | None = None        # int8, the float weight's shape
    weight_scale: np.ndarray | None = None  # float32, one per output channel


def qdq(bb, expr, scale: float, dtype: str):
    """``dequantize(quantize(expr))`` per tensor with zero point 0, emitted into ``bb``."""
    s, z = relax.const(np.float32(scale)), relax.const(0, dtype)
    q = bb.emit(relax.op.quantize(expr, s, z, axis=-1, out_dtype=dtype))
    return bb.emit(relax.op.dequantize(q, s, z, axis=-1, out_dtype="float32"))


def dequantized_weight(bb, weight: np.ndarray, scale: np.ndarray, axis: int):
    """``dequantize(int8 constant)`` per output channel along ``axis``, emitted into ``bb``."""
    zeros = relax.const(np.zeros(scale.shape, np.int8))
    return bb.emit(relax.op.dequantize(relax.const(weight.astype(np.int8)),
                                       relax.const(scale.astype(np.float32)), zeros, axis=axis,
                                       out_dtype="float32"))


@mutator
class _Inserter(PyExprMutator):
    def __init__(self, mod, table):
        super().__init__(mod)
        self.mod_, self.table, self.calls = mod, table, {}
        self.dequantized: dict = {}  # a quantized site input -> its dequantize(quantize(.))

    def transform(self):
        for gvar, func in self.mod_.functions_items():
            if isinstance(func, relax.Function):
                self.calls = {s.call: s for s in find_sites(func) if s.name in self.table}
                self.dequantized = {}
                self.builder_.update_func(gvar, self.visit_expr(func))
        return self.builder_.get()

    def visit_call_(self, call):
        site = self.calls.get(call)
        new = self.visit_expr_post_order(call)
        if site is None:
            return self._residual(call, new)
        quant = self.table[site.name]
        args = list(new.args)
        for i, (scale, dtype) in enumerate(quant.activations):
            args[i] = qdq(self.builder_, args[i], scale, dtype)
            self.dequantized.setdefault(call.args[i], args[i])
        if site.weight_axis is not None:
            args[1] = dequantized_weight(self.builder_, quant.weight, quant.weight_scale,
                                         site.weight_axis)
        return relax.Call(new.op, args, new.attrs)

    def _residual(self, call, new):
        """A later add of a quantized site input (a residual) reads the quantized copy, so the
        float tensor need not be written at all: int8 flows from block to block."""
        if not isinstance(call.op, tvm.ir.Op) or call.op.name != "relax.add":
            return new
        args = [self.dequantized.get(old, arg) for old, arg in zip(call.args, new.args,
                                                                     strict=True)]
        return relax.Call(new.op, args, new.attrs) if any(
            not a.same_as(b) for a, b in zip(args, new.args, strict=True)) else new


@tvm.transform.module_pass(opt_level=0, name="accel.InsertQDQ")
class InsertQDQ:
    """Quantize the inputs of the named sites (``accel.quantize.sites`` names) as ``table`` says:
    activations per tensor (int8 or uint8, zero point 0), weights as int8 constants; residual
    adds of a quantized input read its quantized copy."""

    def __init__(self, table: dict[str, SiteQuant]):
        self.table = dict(table)

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function's listed sites."""
        return relax.transform.Normalize()(_Inserter(mod, self.table).transform())

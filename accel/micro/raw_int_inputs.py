"""RawIntInputs: ``conv2d(int32(x8) - zp, W)`` (and matmul) rewritten as ``conv2d(x8, W) -
zp * sum(W)``, so the 8-bit tensor itself is what kernels pass on: activations take 1 byte
each in the arena instead of 4. Padded convs pad ``x8`` with ``zp`` first. Exact in int32."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from .narrow_weights import constant_value

_SMALL_INTS = ("int8", "uint8", "int16", "uint16")


def _dtype(expr) -> str:
    return str(getattr(expr.ty, "dtype", ""))


@mutator
class _Uncenter(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.conv2d, self.matmul = tvm.ir.Op.get("relax.nn.conv2d"), tvm.ir.Op.get("relax.matmul")
        self.ops = {name: tvm.ir.Op.get(f"relax.{name}") for name in ("subtract", "astype", "add")}
        self.rewritten = 0

    def centered(self, expr):
        """(x8, zp) when ``expr`` is ``astype(x8, int32) - zp`` for a scalar constant zp."""
        sub = self.lookup_binding(expr) if isinstance(expr, relax.Var) else None
        if not isinstance(sub, relax.Call) or not sub.op.same_as(self.ops["subtract"]):
            return None
        zp = constant_value(self, sub.args[1])
        cast = self.lookup_binding(sub.args[0]) if isinstance(sub.args[0], relax.Var) else None
        if zp is None or zp.size != 1 or not isinstance(cast, relax.Call) or \
                not cast.op.same_as(self.ops["astype"]) or _dtype(cast.args[0]) not in _SMALL_INTS:
            return None
        return cast.args[0], int(zp.reshape(-1)[0])

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if call.op.same_as(self.ops["add"]):
            return self.folded_bias(call)
        if not (call.op.same_as(self.conv2d) or call.op.same_as(self.matmul)) or \
                str(call.attrs.out_dtype) != "int32":
            return call
        found, weight = self.centered(call.args[0]), constant_value(self, call.args[1])
        if found is None or weight is None or weight.dtype != np.int32:
            return call
        x8, zp = found
        if call.op.same_as(self.conv2d):
            out = self.conv(call, x8, zp, weight)
        else:
            out = self.matmul_of(call, x8, zp, weight)
        if out is not None:
            self.rewritten += 1
        return call if out is None else out

    def conv(self, call, x8, zp, weight):
        a = call.attrs
        if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW":
            return None
        pads = [int(p) for p in a.padding]
        if zp and any(pads):
            x8 = self.builder_.emit(relax.op.nn.pad(
                x8, [0, 0, 0, 0, pads[0], pads[2], pads[1], pads[3]], pad_value=float(zp)))
            pads = [0, 0, 0, 0]
        acc = relax.op.nn.conv2d(x8, relax.const(weight), strides=a.strides, padding=pads,
                                 dilation=a.dilation, groups=int(a.groups), data_layout="NCHW",
                                 kernel_layout="OIHW", out_layout=str(a.out_layout),
                                 out_dtype="int32")
        correction = zp * weight.astype(np.int64).sum(axis=(1, 2, 3))
        return self.corrected(acc, correction.reshape(1, -1, 1, 1))

    def matmul_of(self, call, x8, zp, weight):
        if weight.ndim != 2:
            return None
        acc = relax.op.matmul(x8, relax.const(weight), out_dtype="int32")
        return self.corrected(acc, zp * weight.astype(np.int64).sum(axis=0))

    def corrected(self, acc, correction):
        if not correction.any():
            return acc
        if np.abs(correction).max() >= 2**31:
            return None
        acc = self.builder_.emit(acc)
        return relax.op.subtract(acc, relax.const(correction.astype(np.int32)))

    def is_accumulator(self, expr) -> bool:
        """Whether ``expr`` is bound to an int32 conv2d or matmul."""
        acc = self.lookup_binding(expr) if isinstance(expr, relax.Var) else None
        return isinstance(acc, relax.Call) and \
            (acc.op.same_as(self.conv2d) or acc.op.same_as(self.matmul)) and \
            str(acc.attrs.out_dtype) == "int32"

    def folded_bias(self, call):
        """``(acc - correction) + bias`` as ``acc + (bias - correction)``: one constant."""
        sub = self.lookup_binding(call.args[0]) if isinstance(call.args[0], relax.Var) else None
        bias = constant_value(self, call.args[1])
        if not isinstance(sub, relax.Call) or not sub.op.same_as(self.ops["subtract"]) or \
                not isinstance(sub.args[1], tvm.ir.GenericConst) or bias is None or \
                bias.dtype != np.int32 or not self.is_accumulator(sub.args[0]):
            return call
        acc, correction = sub.args
        merged = bias.astype(np.int64) - correction.value.numpy().astype(np.int64)
        if np.abs(merged).max() >= 2**31:
            return call
        return relax.op.add(acc, relax.const(merged.astype(np.int32)))


@tvm.transform.module_pass(opt_level=0, name="accel.micro.RawIntInputs")
class RawIntInputs:
    """Feed 8-bit tensors to integer conv2d / matmul directly, with zero-point corrections;
    ``rewritten`` counts the ops rewritten."""

    def __init__(self):
        self.rewritten = 0

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        uncenter = _Uncenter(mod)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                uncenter.builder_.update_func(gvar, uncenter.visit_expr(func))
        self.rewritten += uncenter.rewritten
        return relax.transform.DeadCodeElimination()(uncenter.builder_.get())

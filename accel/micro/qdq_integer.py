"""IntegerQdq: a QDQ model's ``conv2d(dequantize(x8), W)`` (and matmul) computed in int32, as
onnxruntime runs it: the importer folds the weights' DequantizeLinear into float constants, so
their int8 values and scales are recovered from the floats (symmetric int8, per tensor or per
output channel) and the float result is ``float(acc) * (x_scale * w_scale)``."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

_QMAX = 127  # onnxruntime's symmetric int8 weights use [-127, 127]


def recover_int8(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(int8 values, float32 scales) with ``values * scales == weight`` to float32 rounding:
    one scale for the tensor, else one per index of ``axis``; None when neither fits."""
    if weight.dtype != np.float32 or weight.size == 0:
        return None
    moved = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
    for per_channel in (False, True):
        absmax = np.abs(moved).max(axis=1, keepdims=True) if per_channel else \
            np.full((moved.shape[0], 1), np.abs(moved).max(), np.float32)
        scale = np.where(absmax > 0, absmax / _QMAX, 1).astype(np.float32)
        q = np.rint(moved / scale)
        if np.abs(q).max() <= _QMAX and np.allclose(q * scale, moved, rtol=1e-6, atol=0):
            shape = [weight.shape[axis]] + [weight.shape[i] for i in range(weight.ndim)
                                            if i != axis]
            values = np.moveaxis(q.reshape(shape), 0, axis).astype(np.int8)
            return values, scale.reshape(-1)
    return None


@mutator
class _Integer(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.conv2d, self.matmul = tvm.ir.Op.get("relax.nn.conv2d"), tvm.ir.Op.get("relax.matmul")
        self.dequantize = tvm.ir.Op.get("relax.dequantize")
        self.rewritten = 0

    def quantized_input(self, expr):
        """(x8, scale, zero point) of ``dequantize(x8, scale, zp)`` with scalar constants."""
        dq = self.lookup_binding(expr) if isinstance(expr, relax.Var) else None
        if not isinstance(dq, relax.Call) or not dq.op.same_as(self.dequantize):
            return None
        x8, scale, zp = dq.args
        if not all(isinstance(c, tvm.ir.GenericConst) for c in (scale, zp)):
            return None
        scale, zp = scale.value.numpy(), zp.value.numpy()
        if scale.size != 1 or zp.size != 1 or str(x8.ty.dtype) not in ("int8", "uint8"):
            return None
        return x8, np.float32(scale.reshape(-1)[0]), int(zp.reshape(-1)[0])

    def visit_call_(self, call):
        call = super().visit_call_(call)
        is_conv = call.op.same_as(self.conv2d)
        if not (is_conv or call.op.same_as(self.matmul)) or \
                str(call.attrs.out_dtype) not in ("", "void", "None", "float32") or \
                not isinstance(call.args[1], tvm.ir.GenericConst):
            return call
        found = self.quantized_input(call.args[0])
        weight = call.args[1].value.numpy()
        if is_conv and (str(call.attrs.kernel_layout) != "OIHW" or
                        str(call.attrs.data_layout) != "NCHW"):
            return call
        if found is None or (not is_conv and weight.ndim != 2):
            return call
        recovered = recover_int8(weight, 0 if is_conv else 1)
        if recovered is None:
            return call
        self.rewritten += 1
        return self.integer(call, is_conv, found, recovered)

    def integer(self, call, is_conv, found, recovered):
        x8, x_scale, x_zp = found
        values, w_scale = recovered
        centered = self.builder_.emit(relax.op.subtract(
            self.builder_.emit(relax.op.astype(x8, "int32")),
            relax.const(np.int32(x_zp))))
        w = relax.const(values.astype(np.int32))
        if is_conv:
            a = call.attrs
            acc = relax.op.nn.conv2d(centered, w, strides=a.strides, padding=a.padding,
                                     dilation=a.dilation, groups=int(a.groups),
                                     data_layout="NCHW", kernel_layout="OIHW",
                                     out_layout=str(a.out_layout), out_dtype="int32")
            scale = (x_scale * w_scale).astype(np.float32).reshape(1, -1, 1, 1)
        else:
            acc = relax.op.matmul(centered, w, out_dtype="int32")
            scale = (x_scale * w_scale).astype(np.float32)
        if np.all(scale == scale.reshape(-1)[0]):
            scale = np.float32(scale.reshape(-1)[0])
        wide = self.builder_.emit(relax.op.astype(self.builder_.emit(acc), "float32"))
        return relax.op.multiply(wide, relax.const(scale))


@tvm.transform.module_pass(opt_level=0, name="accel.micro.IntegerQdq")
class IntegerQdq:
    """Compute QDQ models' float conv2d / matmul of dequantized int8 inputs and int8-valued
    weights in int32; ``rewritten`` counts the ops rewritten."""

    def __init__(self):
        self.rewritten = 0

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        integer = _Integer(mod)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                integer.builder_.update_func(gvar, integer.visit_expr(func))
        self.rewritten += integer.rewritten
        return relax.transform.DeadCodeElimination()(integer.builder_.get())

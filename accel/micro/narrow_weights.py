"""NarrowIntWeights: int32 conv2d / matmul weight constants whose values fit int8 (or int16)
stored narrow; the kernels widen them as they load (the legalized conv2d and matmul cast both
operands to ``out_dtype``), so a quantized model's weights take 1 byte each in flash."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

#: Ops whose operands are cast to their integer ``out_dtype`` by their legalization.
_OPS = ("relax.nn.conv2d", "relax.nn.conv1d", "relax.matmul")
_NARROW = (np.int8, np.int16)
#: Integer arithmetic on constants evaluated here (numpy wraps as the C kernels would).
_INT_OPS = {"relax.add": np.add, "relax.subtract": np.subtract, "relax.multiply": np.multiply}


def narrowest(value: np.ndarray) -> np.ndarray | None:
    """``value`` as the narrowest of int8/int16 holding it exactly, or None."""
    if value.dtype.kind not in "iu" or value.dtype.itemsize <= 1:
        return None
    for dt in _NARROW:
        info = np.iinfo(dt)
        if np.dtype(dt).itemsize < value.dtype.itemsize and value.size and \
                info.min <= value.min() and value.max() <= info.max:
            return value.astype(dt)
    return None


def constant_value(mutator, expr, depth: int = 0) -> np.ndarray | None:
    """The value of ``expr`` when it is integer arithmetic on constants, else None."""
    if isinstance(expr, tvm.ir.GenericConst):
        return expr.value.numpy()
    if depth > 8:
        return None
    if isinstance(expr, relax.Var):
        bound = mutator.lookup_binding(expr)
        return None if bound is None else constant_value(mutator, bound, depth + 1)
    if not isinstance(expr, relax.Call) or not isinstance(expr.op, tvm.ir.Op):
        return None
    name = expr.op.name
    if name == "relax.reshape" and isinstance(expr.args[1], relax.ShapeExpr):
        value = constant_value(mutator, expr.args[0], depth + 1)
        shape = [int(v) for v in expr.args[1].values]
        return None if value is None else value.reshape(shape)
    if name == "relax.astype":
        value = constant_value(mutator, expr.args[0], depth + 1)
        return None if value is None else value.astype(str(expr.attrs.dtype))
    if name in _INT_OPS:
        a, b = (constant_value(mutator, x, depth + 1) for x in expr.args)
        if a is None or b is None or a.dtype != b.dtype or a.dtype.kind not in "iu":
            return None
        return _INT_OPS[name](a, b).astype(a.dtype)
    return None


@mutator
class _Narrower(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.ops = {tvm.ir.Op.get(name) for name in _OPS}
        self.saved = 0

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not any(call.op.same_as(op) for op in self.ops):
            return call
        out_dtype = str(getattr(call.attrs, "out_dtype", ""))
        if not out_dtype.startswith(("int", "uint")):
            return call
        args = list(call.args)
        for i, arg in enumerate(args):
            value = constant_value(self, arg)
            if value is not None:
                narrow = narrowest(value)
                if narrow is not None and value.dtype.itemsize <= np.dtype(out_dtype).itemsize:
                    self.saved += value.nbytes - narrow.nbytes
                    args[i] = relax.const(narrow)
        return relax.Call(call.op, args, call.attrs, call.ty_args)


@tvm.transform.module_pass(opt_level=0, name="accel.micro.NarrowIntWeights")
class NarrowIntWeights:
    """Store integer conv2d / matmul constants in int8 or int16 when their values fit;
    ``saved`` counts the bytes of flash saved."""

    def __init__(self):
        self.saved = 0

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        narrower = _Narrower(mod)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                narrower.builder_.update_func(gvar, narrower.visit_expr(func))
        self.saved += narrower.saved
        return relax.transform.DeadCodeElimination()(narrower.builder_.get())

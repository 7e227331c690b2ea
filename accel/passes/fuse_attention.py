"""FuseAttention: ``matmul(softmax(scale * matmul(Q, K^T), axis=-1), V)`` on 4-D float32 tensors
becomes one call of accel's fused CPU attention kernel (``accel.cpu_rules.attention``), already
scheduled, so the scores stay in cache instead of making three kernels and two round trips."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator


def _op(expr, name: str) -> bool:
    return isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == f"relax.{name}"


def _static_4d(expr) -> tuple[int, ...] | None:
    ty = getattr(expr, "ty", None)
    shape = getattr(ty, "shape", None)
    shape = getattr(shape, "values", shape)
    if shape is None or getattr(ty, "dtype", "") != "float32" or len(shape) != 4:
        return None
    dims = [getattr(d, "value", None) for d in shape]
    return None if None in dims else tuple(int(d) for d in dims)


def _positive_scalar(expr) -> float | None:
    if not isinstance(expr, tvm.ir.GenericConst):
        return None
    value = expr.value.numpy()
    if value.size != 1 or not np.isfinite(value).all() or float(value.reshape(())) <= 0:
        return None
    return float(value.reshape(()))


@mutator
class _Fuser(PyExprMutator):
    def __init__(self, mod, lanes: int):
        super().__init__(mod)
        self.lanes = lanes

    def _bound(self, expr):
        """The value a dataflow var is bound to (the expression itself when not a var)."""
        if isinstance(expr, relax.Var):
            value = self.lookup_binding(expr)
            return value if value is not None else expr
        return expr

    def _scaled_scores(self, expr):
        """(Q, K^T, scale) when ``expr`` is ``matmul(Q, K^T)`` times or over a positive scalar."""
        expr, scale = self._bound(expr), 1.0
        if _op(expr, "multiply") or _op(expr, "divide"):
            a, b = expr.args
            factor = _positive_scalar(b)
            if factor is None and _op(expr, "multiply"):
                a, factor = b, _positive_scalar(a)
            if factor is None:
                return None
            scale = factor if _op(expr, "multiply") else 1.0 / factor
            expr = self._bound(a)
        if not _op(expr, "matmul"):
            return None
        return expr.args[0], expr.args[1], scale

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not _op(call, "matmul"):
            return call
        probs, v = call.args
        softmax = self._bound(probs)
        if not _op(softmax, "nn.softmax") or int(softmax.attrs.axis) not in (-1, 3):
            return call
        found = self._scaled_scores(softmax.args[0])
        if found is None:
            return call
        q, kt, scale = found
        shapes = [_static_4d(x) for x in (q, kt, v, call)]
        if None in shapes or not _consistent(*shapes):
            return call
        return self._emit(q, kt, v, scale, shapes)

    def _emit(self, q, kt, v, scale, shapes):
        from tvm import te

        from ..cpu_rules.attention import attention_prim_func

        holders = [te.placeholder(s, "float32", name=n)
                   for s, n in zip(shapes[:3], "qkv", strict=True)]
        func = attention_prim_func(*holders, scale, self.lanes)
        gvar = self.builder_.add_func(func.with_attr("op_pattern", 8), "attention")  # opaque
        return relax.call_tir(gvar, [q, kt, v], relax.TensorType(shapes[3], "float32"))


def _consistent(q, kt, v, out) -> bool:
    """Q [B,H,S,D] @ K^T [B,H,D,T], then [B,H,S,T] @ V [B,H,T,E] = [B,H,S,E]."""
    return q[:2] == kt[:2] == v[:2] == out[:2] and q[3] == kt[2] and kt[3] == v[2] \
        and out[2:] == (q[2], v[3])


@tvm.transform.module_pass(opt_level=0, name="accel.FuseAttention")
class FuseAttention:
    """Rewrite each attention block into one fused, scheduled kernel; DeadCodeElimination then
    drops the matmuls and softmax it replaces."""

    def __init__(self, lanes: int):
        self.lanes = lanes

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        fuser = _Fuser(mod, self.lanes)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                fuser.builder_.update_func(gvar, fuser.visit_expr(func))
        return relax.transform.DeadCodeElimination()(fuser.builder_.get())

"""DemoteFloat64: float64 arithmetic inside a model (the requantize of QLinearConv/MatMul) done
in float32, because Cortex-M4/M7 FPUs are single precision and float64 there is soft-float."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

_F64 = "float64"


@mutator
class _Demoter(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.astype = tvm.ir.Op.get("relax.astype")
        self.count = 0

    def visit_generic_const_(self, const):
        if str(const.value.dtype) != _F64:
            return const
        self.count += 1
        return relax.const(const.value.numpy().astype(np.float32))

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if call.op.same_as(self.astype) and str(call.attrs.dtype) == _F64:
            self.count += 1
            return relax.op.astype(call.args[0], "float32")
        return call


def has_float64_boundary(func) -> bool:
    """Whether a parameter or the result of ``func`` is float64 (then nothing is demoted)."""
    tys = [p.ty for p in func.params] + [func.body.ty]
    flat = []
    while tys:
        ty = tys.pop()
        if isinstance(ty, relax.TupleType):
            tys.extend(ty.fields)
        else:
            flat.append(ty)
    return any(isinstance(t, relax.TensorType) and str(t.dtype) == _F64 for t in flat)


@tvm.transform.module_pass(opt_level=0, name="accel.micro.DemoteFloat64")
class DemoteFloat64:
    """Rewrite float64 casts and constants to float32 in every Relax function whose inputs and
    outputs are not float64; ``demoted`` counts the rewritten casts and constants."""

    def __init__(self):
        self.demoted = 0

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        demoter = _Demoter(mod)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function) and not has_float64_boundary(func):
                demoter.builder_.update_func(gvar, demoter.visit_expr(func))
        self.demoted += demoter.count
        return demoter.builder_.get()

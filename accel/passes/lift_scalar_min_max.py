"""LiftScalarMinMax: turn TE-emitted ``maximum``/``minimum`` kernels against a scalar (how TVM's
ONNX importer writes Clip, i.e. ReLU6) back into Relax ops, so that layout conversion and
fusion see through them instead of wrapping each one in a pair of transposes."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

_OPS = {"Max": relax.op.maximum, "Min": relax.op.minimum}


def scalar_min_max_op(func):
    """``relax.op.maximum`` or ``minimum`` when the PrimFunc is ``out[i] = max|min(x[i], c[])``
    for a 0-d ``c``; else None."""
    from tvm import s_tir, tirx

    from ..cpu_rules.common import buffer_of, is_load, root_blocks

    if not isinstance(func, tirx.PrimFunc) or len(func.params) != 3:
        return None
    sch = s_tir.Schedule(func)
    blocks = root_blocks(sch)
    if len(blocks) != 1:
        return None
    store = sch.get(blocks[0]).body
    value = getattr(store, "value", None)
    op = _OPS.get(type(value).__name__)
    if op is None or not is_load(value.a) or not is_load(value.b):
        return None
    x, c = func.params[0], func.params[1]
    if buffer_of(value.a).same_as(x) and buffer_of(value.b).same_as(c) and \
            len(c.shape) == 0:
        return op
    return None


@mutator
class _Lifter(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.mod = mod
        self.call_tir = tvm.ir.Op.get("relax.call_tir")

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not call.op.same_as(self.call_tir) or len(call.args) != 2:
            return call
        callee, args = call.args[0], call.args[1]
        op = scalar_min_max_op(self.mod[callee]) if callee in self.mod.get_global_vars() else None
        if op is None or not isinstance(args, relax.Tuple) or len(args.fields) != 2:
            return call
        return op(args.fields[0], args.fields[1])


@tvm.transform.module_pass(opt_level=0, name="accel.LiftScalarMinMax")
class LiftScalarMinMax:
    """Rewrite ``call_tir(maximum|minimum, (x, scalar))`` into ``R.maximum|minimum(x, scalar)``;
    the kernels left unused are removed by DeadCodeElimination."""

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        lifter = _Lifter(mod)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                lifter.builder_.update_func(gvar, lifter.visit_expr(func))
        return lifter.builder_.get()

"""FoldSimpleConstants: evaluate, with numpy, the few ops on constants that the pipeline itself
creates (BatchNorm's sqrt/add/expand_dims, the weight transposes of a layout conversion, the
weight casts of mixed precision).
relax.transform.FoldConstant compiles every such expression with LLVM (about 0.3 s each: 40 s
for MobileNetV2); this pass leaves it nothing to do for these."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from ._rewrite import rewrite_relax_functions


def _axes(attrs):
    return None if attrs.axes is None else [int(a) for a in attrs.axes]


_FLOAT_OPS = {
    "relax.add": lambda a, b, _: a + b,
    "relax.subtract": lambda a, b, _: a - b,
    "relax.multiply": lambda a, b, _: a * b,
    "relax.divide": lambda a, b, _: a / b,
    "relax.sqrt": lambda a, _: np.sqrt(a),
}
#: Clip's NaN guard on its bounds (the ONNX importer's isnan/where pair).
_SELECT_OPS = {
    "relax.isnan": lambda a, _: np.isnan(a),
    "relax.where": lambda c, a, b, _: np.where(c, a, b).astype(a.dtype),
}
_LAYOUT_OPS = {
    "relax.permute_dims": lambda a, attrs: np.transpose(a, _axes(attrs)),
    "relax.expand_dims": lambda a, attrs: np.expand_dims(a, tuple(int(x) for x in attrs.axis)),
    "relax.reshape": lambda a, shape, _: a.reshape([int(v) for v in shape.values]),
    # ToMixedPrecision's weight casts (numpy rounds float32 -> float16 to nearest even, as LLVM).
    "relax.astype": lambda a, attrs: a.astype(str(attrs.dtype)),
}


def _evaluate(call, values: list):
    """The numpy result of ``call`` on constant ``values``, or None when it is not covered."""
    name = call.op.name
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    if name in _FLOAT_OPS:
        dtypes = {a.dtype for a in arrays}
        if len(arrays) != len(values) or len(dtypes) != 1 or dtypes.pop().kind != "f":
            return None
        return np.asarray(_FLOAT_OPS[name](*values, call.attrs), dtype=arrays[0].dtype)
    if name in _SELECT_OPS and len(arrays) == len(values):
        return np.asarray(_SELECT_OPS[name](*values, call.attrs))
    if name in _LAYOUT_OPS:
        return np.ascontiguousarray(_LAYOUT_OPS[name](*values, call.attrs))
    return None


def _fold_function(func):
    known: dict = {}  # var -> numpy value of a folded binding
    blocks = []
    for block in func.body.blocks:
        bindings = []
        for binding in block.bindings:
            value = binding.value
            if isinstance(binding, relax.VarBinding) and isinstance(value, relax.Call):
                value = _substitute(value, known)
                result = _try_fold(value, known)
                if result is not None:
                    known[binding.var] = result
                    value = _const(result)
                binding = relax.VarBinding(binding.var, value)
            bindings.append(binding)
        kind = relax.DataflowBlock if isinstance(block, relax.DataflowBlock) else relax.BindingBlock
        blocks.append(kind(bindings))
    body = relax.SeqExpr(blocks, func.body.body)
    return relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)


def _const(value: np.ndarray):
    """A constant of the array's own dtype (relax.const alone turns float64 and int64 arrays
    into 32 bits)."""
    return relax.const(value, str(value.dtype))


def _substitute(call, known):
    """``call`` with arguments bound to folded constants replaced by those constants."""
    if not any(arg in known for arg in call.args if isinstance(arg, relax.Var)):
        return call
    args = [_const(known[a]) if isinstance(a, relax.Var) and a in known else a
            for a in call.args]
    return relax.Call(call.op, args, call.attrs, call.ty_args)


def _try_fold(call, known):
    if not isinstance(call.op, tvm.ir.Op) or not call.args:
        return None
    values = []
    for arg in call.args:
        if isinstance(arg, tvm.ir.GenericConst):
            values.append(arg.value.numpy())
        elif isinstance(arg, relax.ShapeExpr):
            values.append(arg)
        else:
            return None
    return _evaluate(call, values)


@tvm.transform.module_pass(opt_level=0, name="accel.FoldSimpleConstants")
class FoldSimpleConstants:
    """Replace permute_dims, expand_dims, reshape, astype, isnan, where, add, subtract, multiply,
    divide and sqrt of constants by their value (float arithmetic only, which numpy rounds as
    LLVM does)."""

    def transform_module(self, mod, _ctx):
        """Fold in every Relax function of the module."""
        return rewrite_relax_functions(mod, _fold_function)

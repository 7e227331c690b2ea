"""FoldBatchNormIntoConv: fold the per-channel affine chain that DecomposeOpsForInference leaves
after a conv2d (BatchNorm's subtract, divide, multiply, add; a bias add) into the conv's
constant weights and one bias add. FoldConstant alone leaves those four ops in place."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprVisitor, visitor

from ._rewrite import rewrite_relax_functions

_AFFINE = ("relax.add", "relax.subtract", "relax.multiply", "relax.divide")


def _step(name: str, scale, shift, c):
    """Compose ``y = x * scale + shift`` with ``y <op> c``."""
    if name == "relax.add":
        return scale, shift + c
    if name == "relax.subtract":
        return scale, shift - c
    if name == "relax.multiply":
        return scale * c, shift * c
    return scale / c, shift / c


def _per_channel(const, rank: int, axis: int, channels: int):
    """The constant as a vector over the channel axis, or None when it varies elsewhere."""
    value = const.value.numpy()
    if value.ndim > rank or value.dtype != np.float32:
        return None
    value = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if any(d != 1 for i, d in enumerate(value.shape) if i != axis):
        return None
    if value.shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float64)


@visitor
class _UseCounter(PyExprVisitor):
    def __init__(self):
        self.uses: dict = {}

    def visit_var_(self, var):
        self.uses[var] = self.uses.get(var, 0) + 1

    def visit_dataflow_var_(self, var):
        self.visit_var_(var)


class _Folder:
    """Walks bindings in order, tracking ``var = conv2d(x, W) * scale + shift`` chains."""

    def __init__(self, uses):
        self.uses = uses
        self.chains: dict = {}  # var -> (conv call, scale, shift)

    def fold(self, var, value):
        """The folded replacement for this binding's value, or None."""
        if not isinstance(value, relax.Call) or not isinstance(value.op, tvm.ir.Op):
            return None
        if value.op.name == "relax.nn.conv2d":
            self._start(var, value)
            return None
        if value.op.name not in _AFFINE or len(value.args) != 2:
            return None
        source, const = value.args
        chain = self.chains.get(source)
        if chain is None or not isinstance(const, tvm.ir.GenericConst) or \
                self.uses.get(source) != 1:
            return None
        conv, scale, shift = chain
        axis, channels = _out_channel_axis(conv)
        vector = _per_channel(const, len(conv.attrs.out_layout), axis, channels)
        if vector is None:
            return None
        scale, shift = _step(value.op.name, scale, shift, vector)
        self.chains[var] = (conv, scale, shift)
        return _rebuild(conv, scale, shift, axis)

    def _start(self, var, conv):
        weight, attrs = conv.args[1], conv.attrs
        if isinstance(weight, tvm.ir.GenericConst) and weight.value.dtype == "float32" and \
                len(attrs.out_layout) == 4 and attrs.out_layout == attrs.data_layout:
            _, channels = _out_channel_axis(conv)
            # the chain is composed in float64 and rounded once, into the new weight and bias
            # (composing in float32 moved PP-OCRv4 rec's scores 2e-4 from onnxruntime's)
            self.chains[var] = (conv, np.ones(channels, np.float64),
                                np.zeros(channels, np.float64))


def _fold_function(func):
    counter = _UseCounter()
    counter.visit_expr(func)
    folder = _Folder(counter.uses)
    blocks = []
    for block in func.body.blocks:
        bindings = []
        for binding in block.bindings:
            new = folder.fold(binding.var, binding.value) \
                if isinstance(binding, relax.VarBinding) else None
            bindings.append(binding if new is None else relax.VarBinding(binding.var, new))
        kind = relax.DataflowBlock if isinstance(block, relax.DataflowBlock) else relax.BindingBlock
        blocks.append(kind(bindings))
    body = relax.SeqExpr(blocks, func.body.body)
    return relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)


def _out_channel_axis(conv):
    axis = conv.attrs.out_layout.index("C")
    return axis, int(conv.args[1].value.shape[conv.attrs.kernel_layout.index("O")])


def _rebuild(conv, scale, shift, axis):
    """``conv2d(x, W * scale) + shift``, the scale along the kernel's O axis."""
    weight = conv.args[1].value.numpy()
    o_axis = conv.attrs.kernel_layout.index("O")
    shape = [1] * weight.ndim
    shape[o_axis] = -1
    new_weight = relax.const((weight.astype(np.float64) * scale.reshape(shape)).astype(np.float32))
    new_conv = relax.Call(conv.op, [conv.args[0], new_weight], conv.attrs)
    bias_shape = [1] * len(conv.attrs.out_layout)
    bias_shape[axis] = -1
    return relax.op.add(new_conv, relax.const(shift.reshape(bias_shape).astype(np.float32)))


@tvm.transform.module_pass(opt_level=0, name="accel.FoldBatchNormIntoConv")
class FoldBatchNormIntoConv:
    """Fold constant per-output-channel add/subtract/multiply/divide chains into conv2d weights
    and a single bias; the superseded bindings are left to DeadCodeElimination."""

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        return rewrite_relax_functions(mod, _fold_function)

"""LowerQDQToInteger: conv/matmul over dequantized int8/uint8 values become integer compute.

``conv2d(dequantize(qx, sx, zx), dequantize(qw, sw, 0))`` becomes ``conv2d(qx, qw,
out_dtype="int32")`` (a nonzero ``zx`` is padded explicitly and corrected by a per-channel
constant), then one float rescale by ``sx * sw``. A following constant bias add becomes an int32
add before the rescale; a following relu (or relu6) and quantize fold into one requantize
(``clip(round(acc * sx * sw / sy) + zy)``), so int8 tensors flow from kernel to kernel. Matmul
(constant weight, or two activations with zero points of 0) is handled the same way. The
superseded float bindings are removed; the per-tensor quantizes left (model inputs, residual
block outputs) become elementwise arithmetic that layout conversion moves through. A
module without Q/DQ is unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..quantize.sites import dtype_of, is_const

_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
#: ops that move or select values without changing them: quantizing commutes with them
_VALUE_PRESERVING = ("relax.reshape", "relax.nn.max_pool2d", "relax.permute_dims")
_CONV = {"relax.nn.conv1d": relax.op.nn.conv1d, "relax.nn.conv2d": relax.op.nn.conv2d}


@dataclasses.dataclass(frozen=True)
class _Acc:
    """An int32 accumulator and how to turn it back to float: ``(acc + bias) * scale``."""

    acc: relax.Expr
    scale: np.ndarray   # float64, one per output channel (or one)
    axis: int           # output channel axis
    rank: int
    bias: np.ndarray | None = None  # int32, per channel
    relu: bool = False
    upper: float | None = None  # relu6-style clip(x, 0, upper) after the relu


def _shaped(vector: np.ndarray, rank: int, axis: int, dtype: str):
    """A constant broadcasting ``vector`` along ``axis`` of a rank-``rank`` tensor."""
    if vector.size == 1:
        return relax.const(vector.reshape(()).astype(dtype))
    shape = [1] * rank
    shape[axis] = -1
    return relax.const(vector.reshape(shape).astype(dtype))


def _channel_vector(value: np.ndarray, rank: int, axis: int, channels: int):
    """``value`` as a per-channel vector when it only varies along ``axis``; else None."""
    if value.ndim > rank:
        return None
    value = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if any(d != 1 for i, d in enumerate(value.shape) if i != axis) or \
            value.shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float64)


@mutator
class _Lowerer(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.mod_ = mod
        self.accs: dict = {}
        self.lowered = 0

    def transform(self):
        for gvar, func in self.mod_.functions_items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gvar, self.visit_expr(func))
        return self.builder_.get()

    # -- looking through bindings -----------------------------------------------------------
    def _chain(self, expr):
        """``expr`` and the values of the variables it is bound to, outermost first."""
        seen = [expr]
        while isinstance(expr, relax.Var):
            bound = self.lookup_binding(expr)
            if bound is None:
                break
            expr = bound
            seen.append(expr)
        return seen

    def _value(self, expr):
        return self._chain(expr)[-1]

    def _acc(self, expr) -> _Acc | None:
        return next((self.accs[e] for e in self._chain(expr) if e in self.accs), None)

    def _const(self, expr):
        """The numpy value of a constant expression (constants, reshapes, dequantize)."""
        expr = self._value(expr)
        if is_const(expr):
            return expr.value.numpy()
        if not isinstance(expr, relax.Call) or not isinstance(expr.op, tvm.ir.Op):
            return None
        name = expr.op.name
        if name not in ("relax.reshape", "relax.dequantize", "relax.astype"):
            return None  # before looking at the arguments: a walk of the whole graph otherwise
        args = []
        for a in expr.args:
            args.append(a if isinstance(a, relax.ShapeExpr) else self._const(a))
            if args[-1] is None:
                return None
        if name == "relax.reshape":
            return args[0].reshape([int(v) for v in args[1].values])
        if name == "relax.dequantize":
            return _dequantize(args[0], args[1], args[2], expr.attrs.axis)
        if name == "relax.astype":
            return args[0].astype(str(expr.attrs.dtype))
        return None

    def _dq(self, expr):
        """(quantized expr, scale, zero point, axis) of a dequantize producing ``expr``."""
        value = self._value(expr)
        if not isinstance(value, relax.Call) or value.op != tvm.ir.Op.get("relax.dequantize"):
            return None
        data, scale, zero = value.args
        if dtype_of(data) not in _INT_RANGE or dtype_of(value) != "float32":
            return None
        scale, zero = self._const(scale), self._const(zero)
        if scale is None or zero is None:
            return None
        rank = len(data.ty.shape)
        return data, scale.astype(np.float64), zero.astype(np.int64), int(value.attrs.axis) % rank

    def _weight(self, expr, out_axis: int):
        """(int8 numpy weight, per-output-channel scale) of a constant dequantized weight."""
        value = self._value(expr)
        transpose = isinstance(value, relax.Call) and \
            value.op == tvm.ir.Op.get("relax.permute_dims")
        found = self._dq(value.args[0] if transpose else expr)
        if found is None:
            return None
        q, scale, zero, axis = found
        q = self._const(q)
        if q is None or q.dtype != np.int8 or np.any(zero != 0):
            return None
        if transpose:
            if q.ndim != 2 or (value.attrs.axes is not None and
                               [int(a) for a in value.attrs.axes] != [1, 0]):
                return None
            q, axis = q.T, 1 - axis
        channels = q.shape[out_axis]
        if scale.size not in (1, channels) or (scale.size > 1 and axis != out_axis):
            return None
        return np.ascontiguousarray(q), np.broadcast_to(scale.reshape(-1), (channels,))

    # -- the rewrites ---------------------------------------------------------------------
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        name = call.op.name if isinstance(call.op, tvm.ir.Op) else ""
        rewrite = {"relax.nn.conv1d": self._conv, "relax.nn.conv2d": self._conv,
                   "relax.matmul": self._matmul, "relax.add": self._bias,
                   "relax.nn.relu": self._relu, "relax.clip": self._clip,
                   "relax.quantize": self._requantize}.get(name)
        out = rewrite(call) if rewrite is not None else None
        return call if out is None else out

    def _activation(self, expr):
        found = self._dq(expr)
        value = self._value(expr)
        if found is None and isinstance(value, relax.Call) and \
                value.op == tvm.ir.Op.get("relax.reshape"):  # dq -> flatten -> matmul
            inner = self._dq(value.args[0])
            if inner is not None and inner[1].size == 1 and inner[2].size == 1:
                moved = self.builder_.emit(relax.op.reshape(inner[0], value.args[1]))
                found = (moved, *inner[1:])
        if found is None or found[1].size != 1 or found[2].size != 1:
            return None
        q, scale, zero, _ = found
        return q, float(scale.reshape(())), int(zero.reshape(()))

    def _conv(self, call):
        attrs = call.attrs
        x = self._activation(call.args[0])
        weight = self._weight(call.args[1], attrs.kernel_layout.index("O"))
        if x is None or weight is None or dtype_of(call) != "float32":
            return None
        (qx, sx, zx), (qw, sw) = x, weight
        padding = [int(p) for p in attrs.padding]
        o_axis = attrs.kernel_layout.index("O")
        correction = None
        if zx != 0:  # pad with the zero point, then subtract zx * sum(window) per channel
            if attrs.data_layout[:2] != "NC":
                return None
            half = len(padding) // 2
            pads = [0, 0, 0, 0] + [v for i in range(half) for v in (padding[i], padding[i + half])]
            qx = self.builder_.emit(relax.op.nn.pad(qx, pads, pad_value=float(zx)))
            padding = [0] * len(padding)
            axes = tuple(i for i in range(qw.ndim) if i != o_axis)
            correction = -zx * qw.astype(np.int64).sum(axis=axes)
        acc = self.builder_.emit(_CONV[call.op.name](
            qx, relax.const(qw), strides=attrs.strides, padding=padding,
            dilation=attrs.dilation, groups=attrs.groups, data_layout=attrs.data_layout,
            kernel_layout=attrs.kernel_layout, out_layout=attrs.out_layout, out_dtype="int32"))
        return self._emit(_Acc(acc, sx * sw, attrs.out_layout.index("C"), len(call.ty.shape),
                               None if correction is None else correction.astype(np.int32)))

    def _matmul(self, call):
        a, b = call.args
        x = self._activation(a)
        if x is None or dtype_of(call) != "float32":
            return None
        qx, sx, zx = x
        rank = len(call.ty.shape)
        weight = self._weight(b, 1) if len(b.ty.shape) == 2 else None
        y = self._activation(b) if weight is None else None
        if y is not None:  # two activations: zero points must be 0
            qy, sy, zy = y
            if zx or zy:
                return None
            acc = self.builder_.emit(relax.op.matmul(qx, qy, out_dtype="int32"))
            return self._emit(_Acc(acc, np.array([sx * sy]), rank - 1, rank))
        if weight is None:
            return None
        qw, sw = weight
        acc = self.builder_.emit(relax.op.matmul(qx, relax.const(qw), out_dtype="int32"))
        correction = (-zx * qw.astype(np.int64).sum(axis=0)).astype(np.int32) if zx else None
        return self._emit(_Acc(acc, sx * sw, rank - 1, rank, correction))

    def _bias(self, call):
        for mine, other in ((call.args[0], call.args[1]), (call.args[1], call.args[0])):
            info = self._acc(mine)
            if info is None or info.relu:
                continue
            value = self._const(other)
            if value is None or value.dtype != np.float32:
                continue
            vector = _channel_vector(value, info.rank, info.axis, len(info.scale)
                                     if info.scale.size > 1 else value.size)
            if vector is None or (info.scale.size == 1 and vector.size != 1 and
                                  info.axis != info.rank - 1):
                continue
            bias = np.round(vector / info.scale).astype(np.int64)
            if info.bias is not None:
                bias = bias + info.bias
            return self._emit(dataclasses.replace(info, bias=bias.astype(np.int32)))
        return None

    def _relu(self, call):
        info = self._acc(call.args[0])
        if info is None or info.relu:
            return None
        return self._emit(dataclasses.replace(info, relu=True))

    def _clip(self, call):
        """``clip(x, 0, hi)`` (relu6) is a relu with an upper bound."""
        info = self._acc(call.args[0])
        bounds = [getattr(b, "value", None) for b in call.args[1:]]
        if info is None or info.relu or any(b is None for b in bounds) or \
                float(bounds[0]) != 0.0 or not float(bounds[1]) > 0:
            return None
        return self._emit(dataclasses.replace(info, relu=True, upper=float(bounds[1])))

    def _requantize(self, call):
        value = self._value(call.args[0])
        if isinstance(value, relax.Call) and value.op.name in _VALUE_PRESERVING and \
                self._acc(value.args[0]) is not None and self._acc(call.args[0]) is None:
            # quantize(reshape(x)) is reshape(quantize(x)) per tensor: requantize, then reshape
            inner = self._requantize(relax.Call(call.op, [value.args[0], *call.args[1:]],
                                                call.attrs))
            if inner is not None:
                moved = self.builder_.emit(inner)
                return relax.Call(value.op, [moved, *value.args[1:]], value.attrs)
        info = self._acc(call.args[0])
        dtype = str(call.attrs.out_dtype)
        scale, zero = self._const(call.args[1]), self._const(call.args[2])
        if info is None or dtype not in _INT_RANGE or scale is None or zero is None or \
                scale.size != 1 or zero.size != 1:
            return None
        zero = int(zero.reshape(()))
        lo, hi = _INT_RANGE[dtype]
        lo = max(lo, zero) if info.relu else lo
        if info.upper is not None:
            hi = min(hi, zero + int(np.round(info.upper / float(scale.reshape(())))))
        value = self.builder_.emit(relax.op.multiply(
            self._float_acc(info), _shaped(info.scale / float(scale.reshape(())), info.rank,
                                           info.axis, "float32")))
        value = self.builder_.emit(relax.op.round(value))
        if zero:
            value = self.builder_.emit(relax.op.add(value, relax.const(float(zero), "float32")))
        self.lowered += 1
        return _clamp_cast(self.builder_, value, lo, hi, dtype)

    def _float_acc(self, info: _Acc):
        acc = info.acc
        if info.bias is not None:
            acc = self.builder_.emit(relax.op.add(
                acc, _shaped(info.bias, info.rank, info.axis, "int32")))
        return self.builder_.emit(relax.op.astype(acc, "float32"))

    def _emit(self, info: _Acc):
        """Emit the float value ``(acc + bias) * scale`` (then relu), remembering its origin."""
        value = relax.op.multiply(self._float_acc(info),
                                  _shaped(info.scale, info.rank, info.axis, "float32"))
        if info.upper is not None:  # relu6: maximum/minimum (clip has no layout inference)
            value = relax.op.minimum(relax.op.nn.relu(self.builder_.emit(value)),
                                     relax.const(np.float32(info.upper)))
        elif info.relu:
            value = relax.op.nn.relu(self.builder_.emit(value))
        out = self.builder_.emit(value)
        self.accs[out] = info
        self.lowered += 1
        return out


def _clamp_cast(bb, value, lo: int, hi: int, dtype: str):
    """``astype(minimum(maximum(value, lo), hi))``: elementwise ops that ConvertLayout moves
    through (clip and quantize would pin the tensor to the model's layout with transposes)."""
    value = bb.emit(relax.op.maximum(value, relax.const(np.float32(lo))))
    value = bb.emit(relax.op.minimum(value, relax.const(np.float32(hi))))
    return relax.op.astype(value, dtype)


@mutator
class _Expander(PyExprMutator):
    """Per-tensor quantize left after lowering, as plain elementwise arithmetic."""

    def __init__(self, mod):
        super().__init__(mod)
        self.mod_ = mod

    def transform(self):
        for gvar, func in self.mod_.functions_items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gvar, self.visit_expr(func))
        return self.builder_.get()

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        name = call.op.name if isinstance(call.op, tvm.ir.Op) else ""
        # dequantize stays: as elementwise ops FuseOps puts a residual's dequantize in front of
        # the next conv as a prologue, which the CPU contraction schedule runs 20-40x slower
        if name != "relax.quantize" or \
                not all(is_const(a) and a.value.numpy().size == 1 for a in call.args[1:]):
            return call
        data, (scale, zero) = call.args[0], [a.value.numpy().reshape(()) for a in call.args[1:]]
        dtype = str(call.attrs.out_dtype)
        if dtype not in _INT_RANGE or dtype_of(data) != "float32":
            return call
        value = self.builder_.emit(relax.op.round(self.builder_.emit(
            relax.op.divide(data, relax.const(np.float32(scale))))))
        if zero:
            value = self.builder_.emit(relax.op.add(value, relax.const(np.float32(zero))))
        return _clamp_cast(self.builder_, value, *_INT_RANGE[dtype], dtype)


def _dequantize(q, scale, zero, axis: int) -> np.ndarray:
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.size > 1 else zero
    return ((q.astype(np.float64) - zero.astype(np.float64)) * scale).astype(np.float32)


@tvm.transform.module_pass(opt_level=0, name="accel.LowerQDQToInteger")
class LowerQDQToInteger:
    """Rewrite dequantize -> conv2d/conv1d/matmul [-> bias] [-> relu] [-> quantize] chains into
    int8/uint8 x int8 -> int32 compute with an int32 bias and a float or integer rescale."""

    def transform_module(self, mod, _ctx):
        """Lower every Relax function; hand back ``mod`` itself when nothing matched."""
        lowerer = _Lowerer(mod)
        lowered = lowerer.transform()
        if not lowerer.lowered:
            return mod
        lowered = relax.transform.DeadCodeElimination()(relax.transform.Normalize()(lowered))
        return relax.transform.Normalize()(_Expander(lowered).transform())

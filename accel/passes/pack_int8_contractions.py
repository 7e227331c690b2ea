"""PackInt8Contractions: int8/uint8 conv2d (NHWC, HWIO) and matmul with int32 output and a
constant int8 weight become kernels on weights packed at compile time for the target's
integer dot-product instruction (VNNI, AVX2 vpmaddwd, NEON sdot); Int8Contraction schedules
them. Anything else (a weight that is not constant, channels that do not tile) is left alone."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from . import _int8_kernels as kernels

_ACTIVATIONS = ("uint8", "int8")
#: AnnotateTIROpPattern's kOutEWiseFusable: FuseOps fuses the elementwise epilogue into it.
_OUT_EWISE_FUSABLE = 4


def _dtype(expr) -> str:
    return str(expr.ty.dtype)


def _static_shape(expr):
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not all(isinstance(d, tvm.tirx.IntImm) for d in shape):
        return None
    return [int(d) for d in shape]


def _int8_constant(expr):
    if not isinstance(expr, tvm.ir.GenericConst) or _dtype(expr) != "int8":
        return None
    return expr.value.numpy()


def _correction(weight: np.ndarray, shift: int, axes) -> np.ndarray | None:
    """-shift * sum(weight) per output channel: what undoes shifting the activations."""
    if not shift:
        return None
    return (-shift * weight.astype(np.int64).sum(axis=axes)).astype(np.int32)


@mutator
class _Packer(PyExprMutator):
    def __init__(self, mod, target):
        super().__init__(mod)
        self.target = target

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not isinstance(call.op, tvm.ir.Op):
            return call
        rewrite = {"relax.nn.conv2d": self._conv, "relax.matmul": self._matmul}.get(call.op.name)
        new = rewrite(call) if rewrite is not None else None
        return call if new is None else new

    def _kind(self, data):
        from ..cpu_rules.int8_intrin import dot_kind, shift

        a_dtype = _dtype(data)
        if a_dtype not in _ACTIVATIONS:
            return None, 0
        kind = dot_kind(self.target, a_dtype)
        return kind, (shift(kind, a_dtype) if kind is not None else 0)

    def _conv(self, call):
        attrs = call.attrs
        data, weight = call.args
        w = _int8_constant(weight)
        if (str(attrs.out_dtype) != "int32" or attrs.data_layout != "NHWC"
                or attrs.kernel_layout != "HWIO" or attrs.out_layout != "NHWC"
                or int(attrs.groups) != 1 or w is None or _static_shape(data) is None):
            return None
        kind, shift = self._kind(data)
        if kind is None or w.shape[3] % kind.lanes:
            return None
        correction = _correction(w, shift, (0, 1, 2))
        args = [data, relax.const(kernels.pack_conv_weight(w, kind))]
        if correction is not None:
            args.append(relax.const(correction))
        return self._call(kernels.conv2d_nhwc, args, correction is not None, kind=kind,
                          shift=shift, strides=[int(s) for s in attrs.strides],
                          padding=[int(p) for p in attrs.padding],
                          dilation=[int(d) for d in attrs.dilation], in_channels=w.shape[2],
                          pad_value=0, name="conv2d_int8")

    def _matmul(self, call):
        data, weight = call.args
        w = _int8_constant(weight)
        shape = _static_shape(data)
        if (str(call.attrs.out_dtype) != "int32" or w is None or w.ndim != 2
                or shape is None or len(shape) < 2):
            return None
        kind, shift = self._kind(data)
        if kind is None or w.shape[1] % kind.lanes:
            return None
        correction = _correction(w, shift, 0)
        args = [data, relax.const(kernels.pack_matmul_weight(w, kind))]
        if correction is not None:
            args.append(relax.const(correction))
        return self._call(kernels.matmul, args, correction is not None, kind=kind, shift=shift,
                          in_features=w.shape[0], name="matmul_int8")

    def _call(self, compute, args, corrected: bool, *, name: str, **kwargs):
        def te_func(data, weight, correction=None):
            return compute(data, weight, correction if corrected else None, **kwargs)

        return self.builder_.call_te(te_func, *args, primfunc_name_hint=name,
                                     primfunc_attrs={"op_pattern": _OUT_EWISE_FUSABLE})


@tvm.transform.module_pass(opt_level=0, name="PackInt8Contractions")
class PackInt8Contractions:
    """Rewrite the int8 contractions this target has a dot-product instruction for."""

    def __init__(self, target):
        self.target = target

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of ``mod``."""
        packer = _Packer(mod, self.target)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                packer.builder_.update_func(gvar, packer.visit_expr(func))
        return packer.builder_.get()

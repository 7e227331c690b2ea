"""QuantizeMatmulWeights: weight-only int8/int4 quantization of matmuls with a constant 2-D
weight: ``R.matmul(x, W)`` becomes one ``call_tir`` of a kernel that reads the packed integer
weights and their group scales and dequantizes inside the reduction. Being a call_tir with a
non-constant input, FoldConstant cannot turn it back into a float weight."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator


def quantizable_weight(call) -> bool:
    """True for ``matmul(x, W)``: float32 x with a static last axis, W a float32 [K, N]
    constant, float32 result."""
    if not isinstance(call.op, tvm.ir.Op) or call.op.name != "relax.matmul":
        return False
    x, w = call.args
    if not isinstance(w, tvm.ir.GenericConst) or len(w.value.shape) != 2 \
            or str(w.value.dtype) != "float32":
        return False
    ty = x.ty
    if not isinstance(ty, relax.TensorType) or ty.dtype != "float32" \
            or not isinstance(ty.shape, relax.ShapeExpr) or not ty.shape.values:
        return False
    last = ty.shape.values[-1]
    out = call.attrs.out_dtype
    return isinstance(last, tvm.tirx.IntImm) and int(last) == w.value.shape[0] \
        and str(out) in ("None", "", "void", "float32")


@mutator
class _Quantizer(PyExprMutator):
    def __init__(self, mod, bits: int, group_size: int, block: int, prologue: bool):
        super().__init__(mod)
        self.bits, self.group_size, self.block = bits, group_size, block
        self.prologue = prologue

    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not quantizable_weight(call):
            return call
        from ..quantize.packing import block_columns, dequant_matmul_te, quantize_groupwise

        packed, scales = quantize_groupwise(call.args[1].value.numpy(), self.bits,
                                            self.group_size)
        k, n = call.args[1].value.shape
        # The blocked int4 kernel reads input channels in pairs: an odd K stays unblocked.
        if self.block > 1 and n % self.block == 0 and (self.bits == 8 or k % 2 == 0) \
                and not self.prologue:
            packed = block_columns(packed, self.block)
        return self.builder_.call_te(
            dequant_matmul_te, call.args[0], relax.const(packed), relax.const(scales),
            bits=self.bits, group_size=self.group_size, prologue=self.prologue,
            primfunc_name_hint=f"int{self.bits}_matmul")


@tvm.transform.module_pass(opt_level=0, name="accel.QuantizeMatmulWeights")
class QuantizeMatmulWeights:
    """Replace every ``matmul(x, W)`` with a constant float32 [K, N] ``W`` by a dequantizing
    int8 (``bits=8``) or int4 (``bits=4``) matmul kernel with one float32 scale per
    ``group_size`` input channels per output. ``block`` > 1 stores the packed weights
    blocked by that many output columns (when it divides them, and for int4 when K is even),
    for CPU schedules; ``prologue`` decodes in a block of its own ahead of the matmul, for
    DLight's GPU rules (plain layout)."""

    def __init__(self, bits: int, group_size: int, block: int = 1, prologue: bool = False):
        if bits not in (4, 8):
            from ..errors import InternalError

            raise InternalError(f"QuantizeMatmulWeights: bits must be 4 or 8, not {bits}")
        self.bits, self.group_size, self.block = bits, group_size, block
        self.prologue = prologue

    def transform_module(self, mod, _ctx):
        """Rewrite every Relax function of the module."""
        quantizer = _Quantizer(mod, self.bits, self.group_size, self.block, self.prologue)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                quantizer.builder_.update_func(gvar, quantizer.visit_expr(func))
        return quantizer.builder_.get()

"""Integer dot-product tensor intrinsics (VNNI, AVX2, NEON dot product) and which one a target has.

accel registers its own instead of importing ``tvm.s_tir.tensor_intrin``: that import pulls in
the CUDA intrinsics and takes about 100 s. Each intrinsic computes
``C[i] += int32(A[k]) * int32(B[i, k])`` for ``i < lanes`` and ``k < depth``: ``A`` is ``depth``
activation values (broadcast to every lane), ``B`` the weight tile packed lanes-major.
"""

from __future__ import annotations

import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class DotKind:
    """One integer dot-product instruction: operand dtypes, tile shape and its LLVM intrinsic."""

    name: str
    a_dtype: str  # activation dtype the instruction takes
    b_dtype: str  # packed weight dtype
    lanes: int  # int32 accumulators per vector
    depth: int  # reduction elements per lane per instruction
    llvm: str
    mnemonic: str  # what the assembly shows

    def intrin_name(self) -> str:
        """The name it is registered under with TensorIntrin."""
        return f"accel_{self.name}"


#: u8 x s8 -> s32 on AVX-512 VNNI: 16 lanes x 4.
VNNI = DotKind("vnni_u8s8_16x4", "uint8", "int8", 16, 4, "llvm.x86.avx512.vpdpbusd.512",
               "vpdpbusd")
#: AVX2: weights packed as int16 and vpmaddwd (8 lanes x 2), exact for every int8 value
#: (vpmaddubsw on u8 x s8 saturates at int16 when both products of a pair are large).
AVX2_U8 = DotKind("avx2_u8s16_8x2", "uint8", "int16", 8, 2, "llvm.x86.avx2.pmadd.wd",
                  "vpmaddwd")
AVX2_S8 = dataclasses.replace(AVX2_U8, name="avx2_s8s16_8x2", a_dtype="int8")
#: s8 x s8 -> s32 on ARMv8.2 dot product: 4 lanes x 4.
SDOT = DotKind("sdot_s8s8_4x4", "int8", "int8", 4, 4, "llvm.aarch64.neon.sdot.v4i32.v16i8",
               "sdot")


def dot_kind(target, a_dtype: str) -> DotKind | None:
    """The instruction for activations of ``a_dtype`` on this target, or None when it has none
    (the activations are then shifted by 128 into the instruction's dtype, see ``shift``)."""
    from tvm.target.codegen import target_has_features

    if target.kind.name != "llvm":
        return None
    triple = str(target.attrs.get("mtriple", ""))
    if triple.startswith(("aarch64", "arm64")):
        return SDOT if target_has_features("dotprod", target) else None
    if target_has_features("avx512vnni", target) and target_has_features("avx512bw", target):
        return VNNI
    if target_has_features("avx2", target):
        return AVX2_U8 if a_dtype == "uint8" else AVX2_S8
    return None


def shift(kind: DotKind, a_dtype: str) -> int:
    """What to add to activations of ``a_dtype`` to bring them into ``kind.a_dtype``: +128 for
    int8 on VNNI, -128 for uint8 on sdot, else 0."""
    if a_dtype == kind.a_dtype:
        return 0
    return 128 if kind.a_dtype == "uint8" else -128


@functools.cache
def register(kind: DotKind) -> str:
    """Register ``kind`` with TensorIntrin once per process; return its name."""
    from tvm.s_tir import TensorIntrin

    TensorIntrin.register(kind.intrin_name(), _desc(kind), _impl(kind))
    return kind.intrin_name()


def _desc(kind: DotKind):
    from tvm.script import tirx as T

    lanes, depth = kind.lanes, kind.depth

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), kind.a_dtype, offset_factor=1)
        B = T.match_buffer(b, (lanes, depth), kind.b_dtype, offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            for i, k in T.grid(lanes, depth):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    return desc


def _impl(kind: DotKind):
    from tvm.script import tirx as T

    lanes, depth = kind.lanes, kind.depth
    a_vec = f"{kind.a_dtype}x{depth}"
    b_vec = f"{kind.b_dtype}x{lanes * depth}"
    c_vec = f"int32x{lanes}"
    # the instruction's first multiplicand: A's bytes (int16 pairs on AVX2) repeated per lane
    a_lanes = f"{'int16' if kind.b_dtype == 'int16' else kind.a_dtype}x{lanes * depth}"
    widen = kind.b_dtype == "int16"
    accumulates = kind.mnemonic != "vpmaddwd"  # vpmaddwd returns the sums; we add them

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), kind.a_dtype, offset_factor=1)
        B = T.match_buffer(b, (lanes, depth), kind.b_dtype, offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            a_word = T.reinterpret(T.Cast(f"int16x{depth}", A.vload([0], a_vec)), dtype="int32") \
                if widen else T.reinterpret(A.vload([0], a_vec), dtype="int32")
            a_all = T.reinterpret(T.broadcast(a_word, lanes), dtype=a_lanes)
            b_all = B.vload([0, 0], dtype=b_vec)
            c_all = C.vload([0], dtype=c_vec)
            if accumulates:
                C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id(kind.llvm), c_all, a_all, b_all, dtype=c_vec)
            else:
                C[T.ramp(T.int32(0), 1, lanes)] = c_all + T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id(kind.llvm), a_all, b_all, dtype=c_vec)

    return impl

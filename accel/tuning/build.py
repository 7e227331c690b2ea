"""The builder MetaSchedule's workers call: TVM's default build minus a 100-second import.

TVM's ``default_build`` imports ``tvm.s_tir.tensor_intrin`` (all the CUDA intrinsics) in every
builder worker on every batch; measured here at about 100 s each time. Kernels for the targets
accel tunes on CPUs and plain GPUs need none of it.
"""

from __future__ import annotations


def build_without_intrinsics(mod, target, _params):
    """Build one candidate kernel module (the ``f_build`` of a ``LocalBuilder``)."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def builder(max_workers: int | None = None):
    """A LocalBuilder using :func:`build_without_intrinsics`."""
    from tvm.s_tir import meta_schedule as ms

    return ms.builder.LocalBuilder(f_build=build_without_intrinsics, max_workers=max_workers)

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


def export_shared_library(toolchain: str, mod) -> str:
    """Link a candidate into a shared library with the target's cross compiler (the
    ``f_export`` of a ``LocalBuilder``): runtime-only devices cannot link the default .tar."""
    import os
    import tempfile

    from tvm.support import cc

    path = os.path.join(tempfile.mkdtemp(prefix="accel-tune-"), "tvm_tmp_mod.so")
    mod.export_library(path, fcompile=cc.cross_compiler(toolchain))
    return path


def die_with_parent() -> None:
    """Worker initializer: the kernel kills this worker when the tuner dies (even by kill -9),
    instead of leaving it orphaned (Linux; a no-op elsewhere)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


def builder(spec, max_workers: int | None = None):
    """A LocalBuilder using :func:`build_without_intrinsics`, exporting with the target's
    toolchain when it names one (an AArch64 board measures a ready-linked .so)."""
    import functools

    from tvm.s_tir import meta_schedule as ms

    export = functools.partial(export_shared_library, spec.toolchain) if spec.toolchain else None
    return ms.builder.LocalBuilder(f_build=build_without_intrinsics, f_export=export,
                                   max_workers=max_workers, initializer=die_with_parent)

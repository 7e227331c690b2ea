"""accel: compile trained models for a named hardware target, and load them in production.

``accel.load`` and the runtime import nothing from the compiler side; ``accel.compile`` pulls in
the frontends and TVM's compiler lazily.
"""

from __future__ import annotations

from .artifact import Artifact, open_artifact
from .errors import AccelError, InternalError
from .options import CompileOptions, OptLevel
from .runtime import CompiledModule, load
from .versions import ACCEL_VERSION as __version__


def __getattr__(name: str):
    """``accel.compile`` (:func:`accel.compiler.compile`), imported on first use."""
    if name == "compile":
        from .compiler import compile

        return compile
    raise AttributeError(f"module 'accel' has no attribute {name!r}")


__all__ = ["AccelError", "Artifact", "CompileOptions", "CompiledModule", "InternalError",
           "OptLevel", "__version__", "compile", "load", "open_artifact"]

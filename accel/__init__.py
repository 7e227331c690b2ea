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


def compile(model, target=None, *, options=None, output=None,
            example_inputs=None, dump_ir=None, signing_key=None) -> Artifact:
    """Compile ``model`` for a named ``target``; see :func:`accel.compiler.compile`."""
    from .compiler import compile as _compile

    return _compile(model, target, options=options, output=output,
                    example_inputs=example_inputs, dump_ir=dump_ir, signing_key=signing_key)


__all__ = ["AccelError", "Artifact", "CompileOptions", "CompiledModule", "InternalError",
           "OptLevel", "__version__", "compile", "load", "open_artifact"]

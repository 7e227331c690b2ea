"""The two error families: AccelError (the user can fix it) and InternalError (a bug in accel)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AccelError(Exception):
    """A problem the user can fix; printed as one line with no traceback.

    Each subclass has a stable process exit code, so scripts can tell failures apart.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(AccelError):
    """A bad command-line option or API argument."""

    exit_code = 2


class ModelFileError(AccelError):
    """A model file that is missing, unreadable, or not a model."""

    exit_code = 3


class InvalidModelError(AccelError):
    """A model file that parses but is malformed (fails the ONNX checker, bad graph)."""

    exit_code = 4


class UnsupportedOpError(AccelError):
    """One or more operators that accel cannot import; lists all of them at once."""

    exit_code = 5

    def __init__(self, path: str, ops: dict[str, list[str]], *,
                 reasons: dict[str, str] | None = None):
        self.ops = ops
        self.reasons = dict(reasons or {})
        parts = []
        for op, nodes in sorted(ops.items()):
            why = f"{self.reasons[op]}; " if op in self.reasons else ""
            more = ", ..." if len(nodes) > 5 else ""
            parts.append(f"{op} ({why}nodes: {', '.join(nodes[:5])}{more})")
        super().__init__(f"{path}: unsupported operators: {'; '.join(parts)}")


class ShapeError(AccelError):
    """A dynamic or inconsistent shape the user must pin, e.g. with --input-shape."""

    exit_code = 6


class TargetError(AccelError):
    """An unknown or malformed named target."""

    exit_code = 7


class InputError(AccelError):
    """A wrong input at run time: unknown name, missing input, bad shape or dtype."""

    exit_code = 8


class ArtifactError(AccelError):
    """An artifact that is corrupt, tampered with, or does not fit this machine."""

    exit_code = 9


class ToolchainError(AccelError):
    """A compiler or tool needed for the target's export step is missing or failed."""

    exit_code = 10


class CompileError(AccelError):
    """TVM rejected the model for this target; names the target and the failing phase."""

    exit_code = 11


class CacheError(AccelError):
    """The compile cache cannot be used (a lock held too long, an unwritable folder)."""

    exit_code = 12


class InternalError(Exception):
    """A bug in accel or TVM: printed with its traceback, exit code 70."""

    exit_code = 70


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return a 'did you mean X?' hint plus the valid choices, for an unknown name."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}valid: {', '.join(choices)}"

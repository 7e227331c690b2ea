"""Tensor signatures (name, shape, dtype) of a model's inputs and outputs; no TVM import."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One named tensor: a static shape (ints) and a numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict for the manifest."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorSpec:
        """The inverse of :meth:`to_json`."""
        return cls(data["name"], tuple(int(d) for d in data["shape"]), str(data["dtype"]))

    def describe(self) -> str:
        """``name: float32[1, 3, 224, 224]``."""
        return f"{self.name}: {self.dtype}[{', '.join(map(str, self.shape))}]"


class NamedIO:
    """Mixin: ``input_names`` / ``output_names`` of a module with ``inputs`` / ``outputs``."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        """Input names, in call order."""
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Output names, in return order."""
        return [t.name for t in self.outputs]


class ManifestIO(NamedIO):
    """Mixin: ``inputs`` / ``outputs`` read off a ``manifest`` dict (artifacts, C packages)."""

    manifest: dict[str, Any]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Input signature, in call order."""
        return tuple(TensorSpec.from_json(t) for t in self.manifest["inputs"])

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Output signature, in return order."""
        return tuple(TensorSpec.from_json(t) for t in self.manifest["outputs"])


def parse_shape_option(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``name=1,3,224,224`` (the --input-shape syntax) into a name and a shape."""
    from .errors import UsageError

    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 0:
        raise UsageError(f"bad --input-shape '{text}'", hint="expected NAME=D0,D1,... e.g. "
                         "input=1,3,224,224")
    return name, shape


def parse_value_option(text: str) -> tuple[str, tuple[float, ...]]:
    """Parse ``name=16000`` or ``name=1,2.5`` (the --input-value syntax) into a name and values."""
    from .errors import UsageError

    name, sep, values = text.rpartition("=")
    try:
        parsed = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        parsed = ()
    if not sep or not name or not parsed:
        raise UsageError(f"bad --input-value '{text}'",
                         hint="expected NAME=V0,V1,... e.g. sr=16000")
    return name, parsed

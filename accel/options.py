"""Compile options: a frozen dataclass with named presets O0..O3, parsed once at the boundary."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from .errors import UsageError


class OptLevel(enum.Enum):
    """Optimization presets; each family's pipeline reads which phases a level turns on."""

    O0 = 0
    O1 = 1
    O2 = 2
    O3 = 3

    @classmethod
    def parse(cls, value: str | int | OptLevel) -> OptLevel:
        """Accept ``"O2"``, ``"2"``, ``2`` or an OptLevel; reject anything else, listing choices."""
        if isinstance(value, OptLevel):
            return value
        text = str(value).upper().removeprefix("O")
        if text.isdigit() and int(text) in range(4):
            return cls(int(text))
        raise UsageError(f"unknown optimization level '{value}'", hint="valid: O0, O1, O2, O3")


class Layout(enum.Enum):
    """Activation layout for convolutions; ``native`` keeps the model's (NCHW for ONNX)."""

    NATIVE = "native"
    NHWC = "NHWC"

    @classmethod
    def parse(cls, value: str | Layout | None) -> Layout | None:
        """Accept a layout name in any case, a Layout, or None (the family's default)."""
        if value is None or isinstance(value, Layout):
            return value
        for layout in cls:
            if str(value).lower() == layout.value.lower():
                return layout
        raise UsageError(f"unknown layout '{value}'",
                         hint="valid: " + ", ".join(layout.value for layout in cls))


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """Everything that changes what a compile produces (and so keys the compile cache)."""

    opt_level: OptLevel = OptLevel.O2
    #: Static shapes for inputs with dynamic or unknown dims, as (name, shape) pairs.
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: Inputs bound to constants at import, as (name, values) pairs: the input leaves the
    #: signature and what it decides (an If on it, a shape it gives) is folded away.
    input_values: tuple[tuple[str, tuple[float, ...]], ...] = ()
    #: Pass names to skip (see ``accel.pipeline.PASS_NAMES``).
    disabled_passes: tuple[str, ...] = ()
    #: A folder of tuning records to apply besides the shipped ones (default
    #: $ACCEL_TUNING_LOGS). A location, not content: the cache key holds the records' digest.
    tuning_logs: str | None = None
    #: Convolution layout; None means the target family's default (``accel.layout``).
    desired_layout: Layout | None = None
    #: Quantization (``accel.quantize.QuantizeOptions``); None compiles in float32. The
    #: calibration data is not an option: its digest keys the cache beside the options.
    quantize: Any = None

    def __post_init__(self):
        object.__setattr__(self, "opt_level", OptLevel.parse(self.opt_level))
        object.__setattr__(self, "desired_layout", Layout.parse(self.desired_layout))
        shapes = dict(self.input_shapes) if not isinstance(self.input_shapes, dict) \
            else self.input_shapes
        object.__setattr__(self, "input_shapes",
                           tuple(sorted((n, tuple(int(d) for d in s)) for n, s in shapes.items())))
        values = dict(self.input_values)
        object.__setattr__(self, "input_values",
                           tuple(sorted((n, tuple(_number(v) for v in np.ravel(vs)))
                                        for n, vs in values.items())))
        object.__setattr__(self, "disabled_passes", tuple(sorted(set(self.disabled_passes))))
        if self.quantize is not None:
            from .quantize import QuantizeOptions

            q = self.quantize
            if not isinstance(q, QuantizeOptions):
                q = QuantizeOptions(**q) if isinstance(q, dict) else QuantizeOptions(mode=q)
            object.__setattr__(self, "quantize", q)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict, stored in the artifact manifest."""
        return {"opt_level": self.opt_level.name,
                "input_shapes": {n: list(s) for n, s in self.input_shapes},
                "disabled_passes": list(self.disabled_passes),
                "desired_layout": self.desired_layout and self.desired_layout.value,
                "quantize": self.quantize and self.quantize.to_json(),
                # only when given, so that earlier compiles keep their cache keys
                **({"input_values": {n: list(v) for n, v in self.input_values}}
                   if self.input_values else {})}


def _number(value) -> int | float:
    """An int when the value is integral (so the cache key does not depend on 16000 vs 16000.0)."""
    value = float(value)
    return int(value) if value.is_integer() else value


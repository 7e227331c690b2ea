"""Quantization: options, calibration data, and the dispatch to each mode's rewrite of a model."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from ..errors import UsageError


class QuantMode(enum.Enum):
    """What a compile quantizes: activations and weights, or weights only, or to float16."""

    INT8 = "int8"                # static int8: calibrated activations, per-channel weights
    FP16 = "fp16"                # float16 mixed precision (accumulating in float32)
    INT8_WEIGHT = "int8-weight"  # weight-only int8, group-wise scales, float activations
    INT4_WEIGHT = "int4-weight"  # weight-only int4, group-wise scales, float activations

    @classmethod
    def parse(cls, value: str | QuantMode) -> QuantMode:
        """Accept a mode name in any case, or a QuantMode; reject others, listing choices."""
        if isinstance(value, QuantMode):
            return value
        for mode in cls:
            if str(value).lower() == mode.value:
                return mode
        raise UsageError(f"unknown quantization mode '{value}'",
                         hint="valid: " + ", ".join(m.value for m in cls))


OBSERVERS = ("minmax", "percentile", "entropy")


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize; part of CompileOptions, so it keys the compile cache."""

    mode: QuantMode = QuantMode.INT8
    #: Activation range observer for int8: minmax, percentile or entropy (KL divergence).
    observer: str = "entropy"
    #: The percentile kept by the percentile observer.
    percentile: float = 99.99
    #: Layers (ONNX node or torch module names, as in the report) left in float.
    keep_float: tuple[str, ...] = ()
    #: Automatic keep-float: a layer whose own quantization error (relative, measured on the
    #: calibration data) exceeds this stays in float. None turns the sensitivity pass off.
    sensitivity: float | None = None
    #: Weight-only modes: input channels sharing one scale.
    group_size: int = 128

    def __post_init__(self):
        object.__setattr__(self, "mode", QuantMode.parse(self.mode))
        if self.observer not in OBSERVERS:
            raise UsageError(f"unknown observer '{self.observer}'",
                             hint="valid: " + ", ".join(OBSERVERS))
        if not 50.0 < float(self.percentile) <= 100.0:
            raise UsageError(f"percentile {self.percentile} is out of range",
                             hint="give a value in (50, 100], e.g. 99.99")
        if self.group_size <= 0 or self.group_size % 2:
            raise UsageError(f"group size {self.group_size} must be a positive even number")
        if self.sensitivity is not None and not self.sensitivity > 0:
            raise UsageError(f"sensitivity {self.sensitivity} must be a positive error bound")
        object.__setattr__(self, "percentile", float(self.percentile))
        object.__setattr__(self, "keep_float", tuple(sorted(set(self.keep_float))))

    @property
    def needs_calibration(self) -> bool:
        """Only static int8 measures activation ranges."""
        return self.mode is QuantMode.INT8

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict, stored in the artifact manifest and the cache key."""
        return {"mode": self.mode.value, "observer": self.observer,
                "percentile": self.percentile, "keep_float": list(self.keep_float),
                "sensitivity": self.sensitivity, "group_size": self.group_size}


def check_calibration(options: QuantizeOptions | None, calibration) -> None:
    """Refuse int8 without calibration data, and calibration data for modes that ignore it."""
    if options is None:
        if calibration is not None:
            raise UsageError("calibration data was given but no quantization mode",
                             hint="add --quantize int8")
        return
    if options.needs_calibration and calibration is None:
        raise UsageError("--quantize int8 needs calibration data",
                         hint="--calibration DIR (a folder of .npz input sets), or in Python "
                              "calibration=[{input name: array}, ...]")
    if not options.needs_calibration and calibration is not None:
        raise UsageError(f"--quantize {options.mode.value} takes no calibration data",
                         hint="calibration is for --quantize int8")


def apply_quantization(model, spec, options: QuantizeOptions, calibration=None):
    """The model rewritten for ``options.mode``: a new Model, same signature."""
    if options.mode is QuantMode.INT8:
        from .int8 import quantize_int8

        return quantize_int8(model, spec, options, calibration)
    if options.mode is QuantMode.FP16:
        from .fp16 import to_fp16

        return to_fp16(model, spec, options)
    from .weight_only import quantize_weights

    return quantize_weights(model, spec, options)

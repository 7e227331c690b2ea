"""Quantization mode 'int8' (placeholder until it lands: refuses with a clear message)."""

from __future__ import annotations

from ..errors import UsageError


def quantize_int8(model, spec, options, calibration):
    """Not implemented yet."""
    raise UsageError(f"--quantize {options.mode.value} is not implemented yet")

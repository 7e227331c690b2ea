"""Quantization mode 'fp16' (placeholder until it lands: refuses with a clear message)."""

from __future__ import annotations

from ..errors import UsageError


def to_fp16(model, spec, options):
    """Not implemented yet."""
    raise UsageError(f"--quantize {options.mode.value} is not implemented yet")

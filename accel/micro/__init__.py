"""Microcontroller targets: a Model lowered to a standalone C package (no TVM on the device)."""

from __future__ import annotations

from .package import compile_package

__all__ = ["compile_package"]

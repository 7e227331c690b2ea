"""The bundled example model (a small MobileNet-style CNN) used by `accel demo`."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).with_name("mobilenet_tiny.onnx")


def example_model() -> Path:
    """Path of the bundled example ONNX model (1x3x96x96 image -> 10 class probabilities)."""
    return EXAMPLE

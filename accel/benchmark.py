"""Benchmark a compiled artifact beside reference runtimes (onnxruntime), interleaved."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .errors import UsageError
from .timing import measure, random_inputs, ratio_rows

REFERENCES = ("onnxruntime",)


def reference_runner(name: str, model: str | os.PathLike, inputs: dict) -> Callable[[], list]:
    """A zero-argument callable running ``model`` on ``inputs`` with a reference runtime."""
    if name != "onnxruntime":
        raise UsageError(f"unknown reference runtime '{name}'",
                         hint=f"valid: {', '.join(REFERENCES)}")
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("--compare onnxruntime needs the onnxruntime package",
                         hint="pip install 'accel[bench]'") from None
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return lambda: session.run(None, inputs)


def compare(module, *, model: str | os.PathLike | None = None,
            references: tuple[str, ...] = (), rounds: int = 5, calls: int = 10,
            inputs: dict | None = None) -> tuple[list[dict], dict[str, float]]:
    """Time ``module`` (a CompiledModule) and each reference on the same inputs.

    Returns table rows (ratios vs the first reference, else vs accel) and, per reference, the
    largest absolute difference between its outputs and accel's.
    """
    if references and model is None:
        raise UsageError("--compare needs --model, the source model to run in the reference")
    inputs = inputs if inputs is not None else random_inputs(module.inputs)
    # A remote module times a call on inputs already on the device (no transfer per call).
    runners = {"accel": module.runner(inputs) if hasattr(module, "runner")
               else lambda: module(**inputs)}
    diffs = {}
    for ref in references:
        runners[ref] = reference_runner(ref, model, inputs)
        diffs[ref] = _max_diff(module(**inputs), runners[ref]())
    stats = measure(runners, rounds=rounds, calls=calls)
    baseline = references[0] if references else "accel"
    return ratio_rows(stats, baseline), diffs


def _max_diff(ours: list, theirs: list) -> float:
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
               for a, b in zip(ours, theirs, strict=True))

"""Interleaved wall-clock timing of zero-argument callables, and a markdown table of the results."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Per-call wall times of one callable, in milliseconds."""

    name: str
    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        """Median per-call time."""
        return float(np.median(self.samples_ms))

    @property
    def min_ms(self) -> float:
        """Fastest call: the least noisy figure on a shared machine."""
        return float(np.min(self.samples_ms))

    @property
    def p90_ms(self) -> float:
        """90th percentile per-call time."""
        return float(np.percentile(self.samples_ms, 90))


def _call_n(fn: Callable[[], object], n: int) -> list[float]:
    """Call ``fn`` ``n`` times; the wall time of each call in ms."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def time_interleaved(callables: Mapping[str, Callable[[], object]], *, rounds: int = 5,
                     calls: int = 10, warmup: int = 3) -> dict[str, Timing]:
    """Time callables fairly against each other on a noisy machine.

    Each callable is first called ``warmup`` times. Then, in each of ``rounds`` rounds, every
    callable is called ``calls`` times in turn; the start of the order rotates by one per round,
    so slow drift (thermal, neighbours) spreads over all of them instead of hitting one.

    Returns
    -------
    dict
        name -> :class:`Timing` with ``rounds * calls`` samples, in the input order.
    """
    names = list(callables)
    for name in names:
        _call_n(callables[name], warmup)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            samples[name] += _call_n(callables[name], calls)
    return {name: Timing(name, tuple(samples[name])) for name in names}


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_table(results: Mapping[str, Mapping[str, Timing]], *, baseline: str = "onnxruntime",
                 extra: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> str:
    """Markdown-style table: model, runner, median ms, p90 ms, ratio vs ``baseline``, extras.

    ``results`` maps model -> runner -> Timing. The ratio is the runner's median over the
    baseline runner's median for the same model (above 1: slower than the baseline); it reads
    "-" when the model has no baseline run. ``extra`` maps model -> runner -> column -> text,
    for columns such as the max difference from the baseline's outputs.
    """
    extra = extra or {}
    columns = list(dict.fromkeys(c for runners in extra.values() for cols in runners.values()
                                 for c in cols))
    header = ["model", "runner", "median ms", "p90 ms", f"x vs {baseline}", *columns]
    lines = [_row(header), _row(["---"] * len(header))]
    for model, runners in results.items():
        base = runners.get(baseline)
        for runner, timing in runners.items():
            ratio = f"{timing.median_ms / base.median_ms:.2f}" if base else "-"
            cells = extra.get(model, {}).get(runner, {})
            lines.append(_row([model, runner, f"{timing.median_ms:.2f}", f"{timing.p90_ms:.2f}",
                               ratio, *(cells.get(c, "-") for c in columns)]))
    return "\n".join(lines)


"""Interleaved latency measurement and text tables, shared by `accel bench` and benchmarks/."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Stats:
    """Per-call latencies of one runner, in milliseconds."""

    samples: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        """Median latency."""
        return float(np.median(self.samples))

    @property
    def p90_ms(self) -> float:
        """90th-percentile latency."""
        return float(np.percentile(self.samples, 90))


def measure(runners: dict[str, Callable[[], object]], *, rounds: int = 5, calls: int = 10,
            warmup: int = 3) -> dict[str, Stats]:
    """Time each zero-argument runner, interleaved: every round calls each runner ``calls``
    times in turn, rotating which goes first, so drift and noise hit all of them alike."""
    names = list(runners)
    for name in names:
        for _ in range(warmup):
            runners[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn = runners[name]
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {n: Stats(tuple(s)) for n, s in samples.items()}


def ratio_rows(stats: dict[str, Stats], baseline: str, **fixed) -> list[dict]:
    """Rows (one per runner) with median, p90 and the ratio to the baseline's median."""
    base = stats[baseline].median_ms
    return [{**fixed, "runner": name, "median ms": f"{s.median_ms:.3f}",
             "p90 ms": f"{s.p90_ms:.3f}", f"vs {baseline}": f"{s.median_ms / base:.2f}x"}
            for name, s in stats.items()]


def render_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Render rows as a Markdown table (also readable as plain text)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    def line(vals):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), rule, *(line(r) for r in cells)])


def random_inputs(specs, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs matching a signature: standard-normal floats; zeros for integer and bool inputs
    (always valid indices, whatever the vocabulary)."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            out[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
        else:
            out[spec.name] = np.zeros(spec.shape, dtype=dtype)
    return out

"""Activation range observers for static int8: min-max, percentile and entropy (KL divergence).

Each observer sees a tensor batch by batch and keeps bounded state: the running minimum and
maximum and a histogram of magnitudes (2048 bins) whose range grows as larger values arrive.
"""

from __future__ import annotations

import numpy as np

BINS = 2048


class Observer:
    """Running min/max plus a magnitude histogram over [0, edge]; ``threshold`` picks the clip."""

    def __init__(self, kind: str, percentile: float = 99.99):
        self.kind, self.percentile = kind, percentile
        self.min, self.max = np.inf, -np.inf
        self.hist = np.zeros(BINS, np.float64)
        self.edge = 0.0

    def update(self, values: np.ndarray) -> None:
        """Add one batch of values."""
        values = np.asarray(values, np.float32).ravel()
        if values.size == 0:
            return
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        if self.kind == "minmax":
            return
        mags = np.abs(values)
        top = float(mags.max())
        if top > self.edge:
            self._grow(top)
        if self.edge > 0:
            counts, _ = np.histogram(mags, bins=BINS, range=(0.0, self.edge))
            self.hist += counts

    def _grow(self, top: float) -> None:
        """Widen the range to ``top``, moving old counts to the bins their centres fall in."""
        if self.edge > 0 and self.hist.any():
            centres = (np.arange(BINS) + 0.5) * (self.edge / BINS)
            self.hist, _ = np.histogram(centres, bins=BINS, range=(0.0, top), weights=self.hist)
        self.edge = top

    @property
    def unsigned(self) -> bool:
        """Never negative: quantized as uint8."""
        return bool(self.min >= 0)

    def threshold(self) -> float:
        """The magnitude mapped to the largest quantized value."""
        absmax = max(abs(self.min), abs(self.max)) if np.isfinite(self.min) else 0.0
        if self.kind == "minmax" or self.edge == 0 or not self.hist.any():
            return float(absmax)
        if self.kind == "percentile":
            return min(float(absmax), _percentile(self.hist, self.edge, self.percentile))
        levels = 255 if self.unsigned else 127
        # KL alone may clip a heavy tail that carries the signal (hardswish outputs in
        # PP-OCRv4: 0% exact lines); never clip more than the percentile observer would.
        floor = _percentile(self.hist, self.edge, self.percentile)
        return min(float(absmax), max(floor, entropy_threshold(self.hist, self.edge, levels)))


def _percentile(hist: np.ndarray, edge: float, percentile: float) -> float:
    cdf = np.cumsum(hist) / hist.sum()
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return (min(index, BINS - 1) + 1) * edge / BINS


def entropy_threshold(hist: np.ndarray, edge: float, levels: int = 127) -> float:
    """TensorRT's calibration: the clip threshold minimizing KL(P || Q) over the histogram.

    P is the histogram cut at ``i`` bins with the clipped tail added to its last bin; Q is P
    merged into ``levels`` quantization bins and spread back over the non-empty source bins.
    """
    width = edge / len(hist)
    hist = hist.copy()
    hist[0] = hist[1]  # a relu's spike of exact zeros would dominate every KL (as in NVIDIA's
    best, best_i = np.inf, len(hist)  # pytorch-quantization); zeros quantize exactly anyway
    start = min(levels + 1, len(hist))
    for i in range(start, len(hist) + 1, 2 if len(hist) > 512 else 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        kl = _kl(p, _expanded(hist[:i], levels))
        if kl < best:
            best, best_i = kl, i
    return (best_i + 0.5) * width if best_i < len(hist) else edge


def _expanded(p: np.ndarray, levels: int) -> np.ndarray:
    """``p`` merged into ``levels`` bins, each bin's mass spread evenly over its nonzero bins."""
    group = (np.arange(len(p)) * levels) // len(p)
    nonzero = p > 0
    sums = np.bincount(group, weights=p, minlength=levels)
    counts = np.bincount(group, weights=nonzero, minlength=levels)
    return np.where(nonzero, sums[group] / np.maximum(counts[group], 1), 0.0)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p_sum, q_sum = p.sum(), q.sum()
    if p_sum == 0 or q_sum == 0:
        return np.inf
    p, q = p / p_sum, q / q_sum
    mask = p > 0
    if np.any(q[mask] == 0):
        return np.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))

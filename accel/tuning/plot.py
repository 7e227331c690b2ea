"""The tuning curve: estimated end-to-end latency against trials and against time, as a PNG."""

from __future__ import annotations

from pathlib import Path

from ..fsutil import atomic_path


def plot_history(points: list[dict], path: Path, *, title: str) -> Path | None:
    """Draw the history's estimated latency; None when there is nothing to draw yet."""
    points = [p for p in points if p.get("estimated_ms") is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (by_trials, by_time) = plt.subplots(1, 2, figsize=(10, 4))
    latency = [p["estimated_ms"] for p in points]
    by_trials.plot([p["trials"] for p in points], latency, marker="o")
    by_trials.set(xlabel="trials", ylabel="estimated latency (ms)")
    by_time.plot([p["elapsed_s"] / 60 for p in points], latency, marker="o")
    by_time.set(xlabel="tuning time (min)")
    for axis in (by_trials, by_time):
        axis.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path

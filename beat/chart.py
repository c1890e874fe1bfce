"""The day's chart: throughput, runtime p95 and error rate per minute, as a PNG (matplotlib, Agg)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot

import matplotlib.pyplot as plt


def render_chart(series: dict[str, list[Any]], path: Path, title: str) -> Path:
    """Write three stacked panels of the per-minute series to `path`."""
    minutes = [datetime.fromisoformat(m) for m in series.get("minute", [])]
    panels = (
        ("throughput", "tasks / min", "tab:blue"),
        ("runtime_p95_s", "runtime p95 (s)", "tab:orange"),
        ("failure_rate_pct", "failures (%)", "tab:red"),
    )
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 7), sharex=True)
    try:
        for axis, (key, label, colour) in zip(axes, panels, strict=True):
            axis.plot(minutes, series.get(key, []), color=colour, linewidth=0.9)
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
        axes[0].set_title(title)
        figure.autofmt_xdate()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=80)
    finally:
        plt.close(figure)
    return path

"""The day's chart: throughput, runtime p95 and error rate per minute, as a PNG (matplotlib, Agg)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PANELS = (
    ("throughput", "tasks / min", "tab:blue"),
    ("runtime_p95_s", "runtime p95 (s)", "tab:orange"),
    ("failure_rate_pct", "failures (%)", "tab:red"),
)


def y_limits(values: Sequence[float | None]) -> tuple[float, float]:
    """From zero to a little above the largest value; 0-1 when there is nothing above zero (matplotlib's own
    limits for an all-zero line were -0.05 to 0.05: negative failures)."""
    top = max((v for v in values if v is not None and math.isfinite(v)), default=0.0)
    return 0.0, top * 1.1 if top > 0 else 1.0


def build_figure(series: dict[str, list[Any]], title: str, period: tuple[datetime, datetime] | None = None) -> Figure:
    """Three stacked panels of the per-minute series; a minute without a value is a gap; `period` spans x."""
    # matplotlib takes about a second to import: loaded by the process that draws, not by every worker.
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    minutes = [datetime.fromisoformat(m) for m in series.get("minute", [])]
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(10, 7), sharex=True)
    for axis, (key, label, colour) in zip(axes, PANELS, strict=True):
        values = series.get(key, [])
        axis.plot(minutes, [math.nan if v is None else v for v in values], color=colour, linewidth=0.9)
        axis.set_ylim(*y_limits(values))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    if period is not None:
        axes[0].set_xlim(period[0], period[1])
    axes[0].set_title(title)
    figure.autofmt_xdate()
    return figure


def render_chart(
    series: dict[str, list[Any]], path: Path, title: str, period: tuple[datetime, datetime] | None = None
) -> Path:
    """Write the chart of the per-minute series to `path`."""
    import matplotlib.pyplot as plt  # loaded by build_figure

    figure = build_figure(series, title, period)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=80)
    finally:
        plt.close(figure)
    return path

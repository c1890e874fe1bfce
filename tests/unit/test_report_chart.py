"""The report's chart: axes that make sense on an empty day, gaps for minutes without a p95."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.pyplot as plt

from beat.chart import build_figure, render_chart, y_limits

START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
PERIOD = (START - timedelta(hours=24), START)


def test_an_empty_day_has_axes_from_zero_not_minus_a_twentieth() -> None:
    # Given a day without a single task
    figure = build_figure({"minute": [], "throughput": [], "runtime_p95_s": [], "failure_rate_pct": []}, "t", PERIOD)
    try:
        # Then every panel runs from 0 to 1 over the report's period
        assert [axis.get_ylim() for axis in figure.axes] == [(0.0, 1.0)] * 3
        left, right = figure.axes[2].get_xlim()
        assert right > left
    finally:
        plt.close(figure)


def test_a_day_without_failures_keeps_the_failure_axis_at_or_above_zero() -> None:
    minutes = [(START - timedelta(minutes=m)).isoformat() for m in (2, 1)]
    series = {"minute": minutes, "throughput": [5, 7], "runtime_p95_s": [0.2, None], "failure_rate_pct": [0.0, 0.0]}
    figure = build_figure(series, "t")
    try:
        throughput, p95, failures = figure.axes
        assert failures.get_ylim() == (0.0, 1.0)
        assert throughput.get_ylim() == (0.0, 7 * 1.1)
        # a minute without a p95 is a gap in the line, not a zero or a bucket bound
        assert math.isnan(p95.get_lines()[0].get_ydata()[1])
    finally:
        plt.close(figure)


def test_y_limits_ignore_missing_values() -> None:
    assert y_limits([None, 2.0, math.nan]) == (0.0, 2.2)
    assert y_limits([]) == (0.0, 1.0)


def test_render_chart_writes_a_png(tmp_path: Path) -> None:
    path = render_chart({"minute": []}, tmp_path / "c.png", "empty", PERIOD)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""Summarise a day of per-minute aggregates: per-signal statistics, per-task rows, chart series."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from beat.aggregates import HostSample, LogEvent, MinuteAggregate, empty_buckets, quantile_from_buckets

# Signals taken from host samples, by attribute name.
HOST_SIGNALS: tuple[str, ...] = (
    "cpu_percent",
    "fleet_cpu_percent",
    "memory_percent",
    "fleet_rss_mb",
    "net_kbps",
    "disk_kbps",
    "error_lines",
    "warning_lines",
    "workers",
)


@dataclass(frozen=True, slots=True)
class Stat:
    """Statistics of one signal's per-minute values over the period."""

    mean: float
    min: float
    max: float
    stdev: float
    p95: float
    total: float
    n: int

    def get(self, name: str) -> float:
        """The named statistic (mean, min, max, stdev, p95, total)."""
        return float(getattr(self, name))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


def describe(values: Iterable[float]) -> Stat | None:
    """Mean, min, max, population standard deviation and p95; None when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Stat(
        mean=statistics.fmean(ordered),
        min=ordered[0],
        max=ordered[-1],
        stdev=statistics.pstdev(ordered) if len(ordered) > 1 else 0.0,
        p95=percentile(ordered, 0.95),
        total=math.fsum(ordered),
        n=len(ordered),
    )


@dataclass(slots=True)
class TaskRow:
    """One task name on one queue over the period."""

    name: str
    queue: str
    count: int
    failures: int
    retries: int
    runtime_mean_s: float
    runtime_p95_s: float | None
    wait_mean_s: float


@dataclass(slots=True)
class DaySummary:
    """Everything the report says about the numbers of the period."""

    start: datetime
    end: datetime
    tasks: int
    failures: int
    retries: int
    signals: dict[str, Stat]
    per_task: list[TaskRow]
    routes: list[TaskRow]
    series: dict[str, list[Any]] = field(default_factory=dict)

    def signal_means(self) -> dict[str, float]:
        """The mean of every signal: what the next days compare against."""
        return {name: stat.mean for name, stat in self.signals.items()}

    def as_json(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "tasks": self.tasks,
            "failures": self.failures,
            "retries": self.retries,
            "signals": {name: asdict(stat) for name, stat in self.signals.items()},
            "per_task": [asdict(row) for row in self.per_task],
            "routes": [asdict(row) for row in self.routes],
            "series": self.series,
        }


def _rollup(rows: Iterable[MinuteAggregate]) -> list[TaskRow]:
    merged: dict[tuple[str, str], MinuteAggregate] = {}
    for row in rows:
        key = (row.name, row.group)
        if key not in merged:
            merged[key] = MinuteAggregate(minute=row.minute, kind=row.kind, name=row.name, group=row.group)
        merged[key].merge(row)
    out = [
        TaskRow(
            name=m.name,
            queue=m.group,
            count=m.count,
            failures=m.failures,
            retries=m.retries,
            runtime_mean_s=m.runtime_sum / m.count if m.count else 0.0,
            runtime_p95_s=quantile_from_buckets(m.buckets, 0.95, m.runtime_max),
            wait_mean_s=m.wait_sum / m.wait_count if m.wait_count else 0.0,
        )
        for m in merged.values()
    ]
    return sorted(out, key=lambda r: (-r.count, r.name, r.queue))


def _per_minute(rows: Iterable[MinuteAggregate]) -> dict[datetime, MinuteAggregate]:
    minutes: dict[datetime, MinuteAggregate] = {}
    for row in rows:
        if row.minute not in minutes:
            minutes[row.minute] = MinuteAggregate(minute=row.minute, kind=row.kind, name="*", group="*")
        minutes[row.minute].merge(row)
    return minutes


def _kind_signals(rows: list[MinuteAggregate], prefix: str) -> dict[str, Stat]:
    minutes = _per_minute(rows)
    values: dict[str, list[float]] = defaultdict(list)
    for m in minutes.values():
        if (p95 := quantile_from_buckets(m.buckets, 0.95, m.runtime_max)) is not None:
            values[f"{prefix}_p95_s"].append(p95)
    return {name: stat for name, vals in values.items() if (stat := describe(vals)) is not None}


def _log_signals(logs: Sequence[LogEvent], start: datetime, end: datetime) -> dict[str, Stat]:
    """Error and warning lines per minute (minutes with at least one line) straight from the log events."""
    counts: dict[str, Counter[datetime]] = {"log_errors_per_min": Counter(), "log_warnings_per_min": Counter()}
    for event in logs:
        if start <= event.at < end:
            key = "log_warnings_per_min" if event.level == "WARNING" else "log_errors_per_min"
            counts[key][event.at.replace(second=0, microsecond=0)] += 1
    return {name: stat for name, c in counts.items() if (stat := describe(float(v) for v in c.values())) is not None}


def _task_series(ordered: Sequence[MinuteAggregate]) -> tuple[dict[str, list[Any]], dict[str, Stat]]:
    """Per-minute series of the tasks (for the chart) and their statistics."""
    series: dict[str, list[Any]] = {
        "minute": [m.minute.isoformat() for m in ordered],
        "throughput": [m.count for m in ordered],
        "failure_rate_pct": [100.0 * m.failures / m.count if m.count else 0.0 for m in ordered],
        # None for a minute without a measured execution: the chart leaves a gap rather than drawing a bound.
        "runtime_p95_s": [quantile_from_buckets(m.buckets, 0.95, m.runtime_max) for m in ordered],
    }
    signals = {
        name: stat
        for name in list(series)[1:]
        if (stat := describe(v for v in series[name] if v is not None)) is not None
    }
    if (wait := describe(m.wait_sum / m.wait_count for m in ordered if m.wait_count)) is not None:
        signals["queue_wait_s"] = wait
    return series, signals


def _host_signals(samples: Sequence[HostSample]) -> dict[str, Stat]:
    """Statistics of the host samples, queue depth summed over queues."""
    signals = {
        name: stat for name in HOST_SIGNALS if (stat := describe(float(getattr(h, name)) for h in samples)) is not None
    }
    if (depth := describe(float(sum(h.queue_depth.values())) for h in samples)) is not None:
        signals["queue_depth"] = depth
    return signals


def summarise(
    aggregates: Sequence[MinuteAggregate],
    hosts: Sequence[HostSample],
    start: datetime,
    end: datetime,
    logs: Sequence[LogEvent] = (),
) -> DaySummary:
    """Statistics of every signal over the period's minutes, per-task rows and the chart's series."""
    in_period = [a for a in aggregates if start <= a.minute < end]
    tasks = [a for a in in_period if a.kind == "task"]
    ordered = sorted(_per_minute(tasks).values(), key=lambda m: m.minute)
    series, signals = _task_series(ordered)
    signals.update(_kind_signals([a for a in in_period if a.kind == "http"], "http"))
    signals.update(_kind_signals([a for a in in_period if a.kind == "db"], "db"))
    signals.update(_host_signals([h for h in hosts if start <= h.minute < end]))
    signals.update(_log_signals(logs, start, end))
    total = MinuteAggregate(minute=start, kind="task", name="*", group="*", buckets=empty_buckets())
    for m in ordered:
        total.merge(m)
    return DaySummary(
        start=start,
        end=end,
        tasks=total.count,
        failures=total.failures,
        retries=total.retries,
        signals=signals,
        per_task=_rollup(tasks),
        routes=_rollup(a for a in in_period if a.kind in ("http", "db")),
        series=series,
    )


def change_pct(current: float, reference: float | None) -> float | None:
    """Relative change in percent; None without a reference or when the reference is zero."""
    if reference is None or reference == 0:
        return None
    return 100.0 * (current - reference) / abs(reference)


def compare(
    summary: DaySummary, previous: dict[str, float] | None, history: Sequence[dict[str, float]]
) -> dict[str, dict[str, float | None]]:
    """Per signal: mean today, change vs the previous day and vs the mean of the baseline days."""
    out: dict[str, dict[str, float | None]] = {}
    for name, stat in summary.signals.items():
        base_values = [day[name] for day in history if name in day]
        baseline = statistics.fmean(base_values) if base_values else None
        out[name] = {
            "mean": stat.mean,
            "previous": (previous or {}).get(name),
            "vs_previous_pct": change_pct(stat.mean, (previous or {}).get(name)),
            "baseline": baseline,
            "vs_baseline_pct": change_pct(stat.mean, baseline),
        }
    return out

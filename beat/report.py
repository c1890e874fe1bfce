"""Assemble the daily report and the briefing from collected evidence: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from beat.aggregates import HostSample, LogEvent, MinuteAggregate
from beat.analyzer import PRIORITY_ORDER, Evidence, Issue, Pattern, analyze
from beat.components import Component, Health, Probe, assess, rollup
from beat.config import ReportsConfig
from beat.coverage import unexplained
from beat.i18n import words
from beat.render import render_briefing, render_report
from beat.summary import DaySummary, compare, describe, summarise
from beat.thresholds import Level, classify_all

# An issue of these priorities makes the health at least WARNING: "OK" never comes with one.
URGENT = frozenset({"HIGH", "MEDIUM"})


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """Everything a report is made of, gathered by the adapters."""

    day: date
    start: datetime
    end: datetime
    now: datetime
    config: ReportsConfig
    probe: Probe
    aggregates: Sequence[MinuteAggregate] = ()
    hosts: Sequence[HostSample] = ()
    logs: Sequence[LogEvent] = ()
    previous: dict[str, float] | None = None
    history: Sequence[dict[str, float]] = ()
    ledger: dict[str, Any] | None = None
    agents: dict[str, Any] | None = None
    # Messages given back to their queues (a lost worker's, a shutdown's...): "<queue> (<reason>)" -> count.
    restored: dict[str, int] | None = None
    late: bool = False
    offline: bool = False
    language: str = "en"
    # Alert incidents that fired in the period: rule, labels, severity, summary, fired_at, resolved_at (or None).
    incidents: Sequence[dict[str, Any]] = ()


@dataclass(slots=True)
class Report:
    """A finished report: Markdown, its figures (the dashboard JSON) and what was found."""

    day: date
    health: Health
    late: bool
    markdown: str
    figures: dict[str, Any]
    issues: list[Issue]
    components: list[Component] = field(default_factory=list)


def judge(
    summary: DaySummary, inputs: ReportInputs, patterns: Sequence[Pattern]
) -> tuple[dict[str, Level], list[Component], Health, list[Issue]]:
    """Levels of the signals, component states, the health roll-up and the issues found."""
    levels = classify_all(summary.signals, inputs.config.all_thresholds())
    components = assess(inputs.probe, inputs.now, offline=inputs.offline)
    if (workers := describe([float(len(inputs.probe.workers))])) is not None:
        summary.signals.setdefault("workers", workers)
    evidence = Evidence(signals=summary.signals, levels=levels, components=components, logs=inputs.logs)
    matched = analyze(patterns, evidence, inputs.language)
    # Whatever makes the health worse than OK is an issue with an action, even where no pattern matched.
    extra = unexplained(matched, patterns, components, levels, inputs.language)
    issues = sorted([*matched, *extra], key=lambda issue: (PRIORITY_ORDER[issue.priority], issue.id))
    health = rollup(components)
    signal_warning = any(level == Level.WARNING for level in levels.values())
    if health == Health.OK and (signal_warning or any(i.priority in URGENT for i in issues)):
        health = Health.WARNING
    return levels, components, health, issues


def build_report(inputs: ReportInputs, patterns: Sequence[Pattern], chart: str | None = None) -> Report:
    """The daily report for `inputs.day`, with `chart` (a file name beside the report) linked if given."""
    summary = summarise(inputs.aggregates, inputs.hosts, inputs.start, inputs.end, inputs.logs)
    levels, components, health, issues = judge(summary, inputs, patterns)
    comparison = compare(summary, inputs.previous, inputs.history)
    figures: dict[str, Any] = {
        "date": inputs.day.isoformat(),
        "generated_at": inputs.now.isoformat(),
        "health": health.value,
        "late": inputs.late,
        "language": inputs.language,
        "summary": summary.as_json(),
        "signal_means": summary.signal_means(),
        "levels": {name: level.value for name, level in levels.items()},
        "comparison": comparison,
        "components": [
            {"name": c.name, "status": c.status.value, "detail": c.detail, "metrics": c.metrics} for c in components
        ],
        "issues": [issue.as_json() for issue in issues],
        "ledger": inputs.ledger,
        "agents": inputs.agents,
        "restored": inputs.restored,
        "chart": chart,
        "incidents": list(inputs.incidents),
    }
    markdown = render_report(figures, summary, levels, components, issues, inputs.language)
    markdown += render_incidents(inputs.incidents, inputs.language)
    return Report(inputs.day, health, inputs.late, markdown, figures, issues, components)


def build_briefing(inputs: ReportInputs, patterns: Sequence[Pattern]) -> tuple[str, dict[str, Any]]:
    """The short Markdown briefing of the current state and its JSON."""
    summary = summarise(inputs.aggregates, inputs.hosts, inputs.start, inputs.end, inputs.logs)
    _levels, components, health, issues = judge(summary, inputs, patterns)
    data = {
        "health": health.value,
        "components": [{"name": c.name, "status": c.status.value, "detail": c.detail} for c in components],
        "issues": [issue.as_json() for issue in issues],
        "incidents": list(inputs.incidents),
    }
    markdown = render_briefing(health, components, issues, inputs.language)
    return markdown + render_incidents(inputs.incidents, inputs.language), data


def render_incidents(incidents: Sequence[dict[str, Any]], language: str) -> str:
    """The period's alert incidents as a Markdown section, newest first."""
    w = words(language)
    out = ["", f"## {w['alerts']}", ""]
    if not incidents:
        return "\n".join([*out, w["alerts_none"], ""])
    for incident in sorted(incidents, key=lambda i: str(i["fired_at"]), reverse=True):
        labels = ", ".join(f"{k}={v}" for k, v in dict(incident["labels"]).items())
        until = incident.get("resolved_at") or w["still_firing"]
        out.append(
            f"- **{incident['severity']}** `{incident['rule']}`{f' ({labels})' if labels else ''}: "
            f"{incident['summary']} ({incident['fired_at']} → {until})"
        )
    return "\n".join([*out, ""])

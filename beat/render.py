"""Markdown of the daily report and of the briefing, in English or Korean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from beat.analyzer import Issue
from beat.components import Component, Health
from beat.i18n import words
from beat.summary import DaySummary, TaskRow
from beat.thresholds import Level

_LEVEL_MARK = {Level.NORMAL: "", Level.CAUTION: " ⚠", Level.WARNING: " ⛔"}


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _signals(
    summary: DaySummary, levels: Mapping[str, Level], comparison: Mapping[str, Any], w: dict[str, str]
) -> list[str]:
    lines = [
        f"| {w['signal']} | mean | min | max | stdev | p95 | {w['vs_prev']} | {w['vs_base']} | {w['status']} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, stat in summary.signals.items():
        level = levels.get(name)
        status = f"{w[level.value]}{_LEVEL_MARK[level]}" if level is not None else w["none"]
        cmp = comparison.get(name, {})
        lines.append(
            f"| {name} | {_num(stat.mean)} | {_num(stat.min)} | {_num(stat.max)} | {_num(stat.stdev)} | "
            f"{_num(stat.p95)} | {_pct(cmp.get('vs_previous_pct'))} | {_pct(cmp.get('vs_baseline_pct'))} | {status} |"
        )
    return lines


def _rows(rows: Sequence[TaskRow], w: dict[str, str], first: str) -> list[str]:
    if not rows:
        return [w["no_data"]]
    lines = [
        f"| {first} | {w['queue']} | {w['count']} | {w['failures']} | {w['retries']} | mean s | p95 s | wait s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.name} | {r.queue} | {r.count} | {r.failures} | {r.retries} | {r.runtime_mean_s:.4f} | "
        f"{_num(r.runtime_p95_s)} | {r.wait_mean_s:.3f} |"
        for r in rows
    ]
    return lines


def _figures(figures: Mapping[str, Any] | None, w: dict[str, str]) -> list[str]:
    if not figures:
        return [w["no_data"]]
    return [f"- {key}: {value}" for key, value in figures.items()]


def components_table(components: Sequence[Component], w: dict[str, str]) -> list[str]:
    """The component table."""
    lines = [f"| {w['component']} | {w['status']} | {w['detail']} |", "|---|---|---|"]
    return lines + [f"| {c.name} | {c.status.value} | {c.detail} |" for c in components]


def issues_section(issues: Sequence[Issue], w: dict[str, str]) -> list[str]:
    """Each issue with its priority, evidence and numbered actions."""
    if not issues:
        return [w["no_issues"]]
    lines: list[str] = []
    for issue in issues:
        lines.append(
            f"### [{issue.priority}] {issue.title} (`{issue.id}`, {issue.category}; "
            f"{', '.join(issue.components)}; {w['minutes']}: {issue.minutes})"
        )
        lines += [f"- {sentence}" for sentence in issue.evidence]
        lines += ["", f"{w['actions']}:"]  # a paragraph of its own, not a continuation of the last evidence item
        lines += [f"{n}. {action}" for n, action in enumerate(issue.actions, 1)]
        lines.append("")
    return lines


def next_steps(issues: Sequence[Issue], w: dict[str, str]) -> list[str]:
    """The first action of each issue, most urgent first."""
    if not issues:
        return [w["nothing_to_do"]]
    return [f"{n}. [{i.priority}] {i.actions[0] if i.actions else i.title}" for n, i in enumerate(issues, 1)]


def render_report(
    report: Mapping[str, Any],
    summary: DaySummary,
    levels: Mapping[str, Level],
    components: Sequence[Component],
    issues: Sequence[Issue],
    language: str,
) -> str:
    """The daily report as Markdown; `report` holds date, health, late, comparison, ledger, agents, chart."""
    w = words(language)
    out = [f"# {w['title']}: {report['date']}", ""]
    if report.get("late"):
        out += [f"> **{w['late']}**", ""]
    out += [
        f"- {w['health']}: **{report['health']}**",
        f"- {w['period']}: {summary.start.isoformat(timespec='minutes')} → {summary.end.isoformat(timespec='minutes')}",
        f"- {w['tasks']}: {summary.tasks}, {w['failures']}: {summary.failures}, {w['retries']}: {summary.retries}",
        "",
        f"## {w['signals']}",
        *_signals(summary, levels, report.get("comparison", {}), w),
        "",
        f"## {w['per_task']}",
        *_rows(summary.per_task, w, w["task"]),
        "",
        f"## {w['latency']}",
        *_rows(summary.routes, w, w["route"]),
        "",
        f"## {w['ledger']}",
        *_figures(report.get("ledger"), w),
        "",
        f"## {w['agents']}",
        *_figures(report.get("agents"), w),
        "",
        f"## {w['restored']}",
        *(_figures(report.get("restored"), w) if report.get("restored") else [w["none_restored"]]),
        "",
        f"## {w['components']}",
        *components_table(components, w),
        "",
        f"## {w['issues']}",
        *issues_section(issues, w),
        "",
        f"## {w['next_steps']}",
        *next_steps(issues, w),
    ]
    if report.get("chart"):
        out += ["", f"## {w['chart']}", f"![{w['chart']}]({report['chart']})"]
    return "\n".join(out).rstrip() + "\n"


def render_briefing(health: Health, components: Sequence[Component], issues: Sequence[Issue], language: str) -> str:
    """A short Markdown briefing of the current state for a person or an LLM."""
    w = words(language)
    out = [f"# {w['briefing']}", "", f"- {w['health']}: **{health.value}**"]
    out += [f"- {c.name}: {c.status.value} ({c.detail})" for c in components]
    out += ["", f"## {w['issues']}", *issues_section(issues, w), f"## {w['next_steps']}", *next_steps(issues, w)]
    return "\n".join(out).rstrip() + "\n"

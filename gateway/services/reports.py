"""Report services shared by the CLI and the HTTP API: run a report, read reports, brief."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from beat.errors import ReportNotFound
from beat.html import report_html
from beat.schedule import check_report_date
from worker.reports import service as reporting
from worker.reports import store
from worker.settings import get_settings


def check_date(day: date) -> date:
    """The day when a report of it makes sense (2000-01-01 to tomorrow in FLEET_TIMEZONE); ReportDateInvalid."""
    return check_report_date(day, datetime.now(ZoneInfo(get_settings().timezone)).date())


def _record(row: Any) -> dict[str, Any]:
    return {
        "date": row.report_date.isoformat(),
        "created_at": row.created_at.isoformat(),
        "late": row.late,
        "trigger": row.trigger,
        "health": row.health,
        "language": row.language,
        "markdown": row.markdown,
        "figures": row.figures,
    }


def run_report(day: date | None = None, replace: bool = True) -> dict[str, Any]:
    """Make the report of `day` (today by default) now; files, counts, health and issue ids."""
    return reporting.generate(day, trigger="manual", replace=replace)


def latest_report() -> dict[str, Any]:
    """The newest stored report; ReportNotFound when there is none."""
    row = store.latest_report()
    if row is None:
        raise ReportNotFound("no report has been made yet")
    return _record(row)


def report_by_date(day: date) -> dict[str, Any]:
    """The stored report of a date; ReportNotFound when there is none."""
    row = store.get_report(check_date(day))
    if row is None:
        raise ReportNotFound(f"no report for {day.isoformat()}")
    return _record(row)


def report_page(day: date | None = None) -> str:
    """The stored report of a date (the newest without one) as an HTML page, its chart inlined."""
    row = store.get_report(day) if day is not None else store.latest_report()
    if row is None:
        raise ReportNotFound(f"no report for {day.isoformat()}" if day else "no report has been made yet")
    chart = (row.figures or {}).get("chart")
    png = None
    if isinstance(chart, str) and chart:
        chart_path = get_settings().report_dir / Path(chart).name  # a bare file name beside the report
        png = chart_path.read_bytes() if chart_path.is_file() else None
    return report_html(row.markdown, f"Fleet status report {row.report_date.isoformat()}", chart, png)


def briefing(hours: float = 1.0) -> dict[str, Any]:
    """The current state for a person or an LLM: Markdown plus health, components and issues."""
    markdown, data = reporting.briefing(hours=hours)
    return {"markdown": markdown, **data}

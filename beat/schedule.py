"""The Beat schedule as a pure function of settings: collect every minute, report daily, pause offline."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from beat.config import ReportsConfig, reports_config
from beat.errors import ReportDateInvalid

COLLECT_TASK = "reports.collect_metrics"
REPORT_TASK = "reports.daily_status"
# Beat sends these to the reports queue at normal priority; a sample older than a minute is useless.
COLLECT_OPTIONS: dict[str, Any] = {"queue": "reports", "priority": 5, "expires": 55}
REPORT_OPTIONS: dict[str, Any] = {"queue": "reports", "priority": 3}


# Reports cover the fleet's own days: nothing older than this, nothing later than tomorrow (a clock ahead of
# the fleet's zone); a far date would otherwise overflow the period arithmetic or become "the latest report".
EARLIEST_REPORT_DATE = date(2000, 1, 1)


def check_report_date(day: date, today: date) -> date:
    """The day, when a report of it makes sense (2000-01-01 to tomorrow); ReportDateInvalid otherwise."""
    latest = today + timedelta(days=1)
    if not EARLIEST_REPORT_DATE <= day <= latest:
        raise ReportDateInvalid(
            f"report date {day.isoformat()} is out of range: {EARLIEST_REPORT_DATE.isoformat()} to {latest.isoformat()}"
        )
    return day


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def in_offline_window(at: time, window: tuple[time, time] | None) -> bool:
    """True when the local time falls in [start, end) of the window (which may cross midnight)."""
    if window is None:
        return False
    start, end, now = _minutes(window[0]), _minutes(window[1]), _minutes(at)
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def online_hours(window: tuple[time, time] | None) -> str:
    """A crontab hour field naming every hour not wholly inside the offline window."""
    if window is None:
        return "*"
    hours = [h for h in range(24) if not all(in_offline_window(time(h, m), window) for m in range(60))]
    return _ranges(hours)


def _ranges(hours: list[int]) -> str:
    parts: list[str] = []
    start = prev = None
    for hour in [*hours, None]:
        if hour is not None and prev is not None and hour == prev + 1:
            prev = hour
            continue
        if start is not None and prev is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = hour
    return ",".join(parts)


def report_time(config: ReportsConfig) -> time:
    """The report's local time; moved to the end of the offline window if it falls inside it."""
    at = config.report_at
    window = config.window
    return window[1] if window is not None and in_offline_window(at, window) else at


def build_schedule(section: dict[str, Any], timezone: str) -> dict[str, dict[str, Any]]:
    """Beat entries as plain data: task, crontab fields (minute, hour) in `timezone`, publish options."""
    config = reports_config(section)
    at = report_time(config)
    return {
        "collect-metrics": {
            "task": COLLECT_TASK,
            "cron": {"minute": "*", "hour": online_hours(config.window)},
            "timezone": timezone,
            "options": dict(COLLECT_OPTIONS),
        },
        "daily-status-report": {
            "task": REPORT_TASK,
            "cron": {"minute": str(at.minute), "hour": str(at.hour)},
            "timezone": timezone,
            "options": dict(REPORT_OPTIONS),
        },
    }


def is_late(now_local: datetime, config: ReportsConfig) -> bool:
    """A report made more than the grace period after its scheduled time is marked late."""
    due = datetime.combine(now_local.date(), report_time(config), tzinfo=now_local.tzinfo)
    return now_local > due + timedelta(minutes=config.late_grace_minutes)


def missed_report_due(
    now_local: datetime, has_report_today: bool, config: ReportsConfig, fleet_since: datetime | None
) -> date | None:
    """Today's date when its report time has passed without a report (the fleet was down), else None.

    `fleet_since` is the fleet's first trace (a metrics sample or a report): a fleet first seen after
    today's report time, or never (a brand-new one), has missed nothing.
    """
    if has_report_today or in_offline_window(now_local.time(), config.window):
        return None
    due = datetime.combine(now_local.date(), report_time(config), tzinfo=now_local.tzinfo)
    if now_local < due or fleet_since is None or fleet_since > due:
        return None
    return now_local.date()


def report_period(day: date, now_local: datetime, config: ReportsConfig) -> tuple[datetime, datetime]:
    """The 24 hours a report covers: up to now for today's report, up to the report time for a past day."""
    end = now_local if day >= now_local.date() else datetime.combine(day, report_time(config), tzinfo=now_local.tzinfo)
    return end - timedelta(hours=24), end

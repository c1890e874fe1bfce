"""What the console lists beside runs: the daily reports made so far, and the ledger's recent alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from worker.db import get_engine
from worker.ledger.models import LedgerAlert
from worker.reports.models import StatusReport

REPORTS, ALERTS = StatusReport.__table__, LedgerAlert.__table__


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def recent_reports(limit: int = 30) -> list[dict[str, Any]]:
    """The newest reports (date, health, when and how made), newest first."""
    columns = (REPORTS.c.report_date, REPORTS.c.health, REPORTS.c.created_at, REPORTS.c.late, REPORTS.c.trigger)
    query = select(*columns).order_by(REPORTS.c.report_date.desc()).limit(limit)
    with get_engine().connect() as connection:
        rows = connection.execute(query).all()
    return [{"date": r.report_date, "health": r.health, "created_at": _aware(r.created_at), "late": r.late,
             "trigger": r.trigger} for r in rows]  # fmt: skip


def recent_alerts(hours: float = 24.0, limit: int = 200) -> list[dict[str, Any]]:
    """The ledger's alerts (unusual amounts, event and rejection rates) of the last hours, newest first."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    query = select(ALERTS).where(ALERTS.c.at >= since).order_by(ALERTS.c.at.desc()).limit(limit)
    with get_engine().connect() as connection:
        rows = connection.execute(query).all()
    return [{"at": _aware(r.at), "kind": r.kind, "account": r.account, "event_id": r.event_id,
             "details": r.details or {}} for r in rows]  # fmt: skip

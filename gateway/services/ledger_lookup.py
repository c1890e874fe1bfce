"""Ledger lookups for operators: an account's shadow balance with its latest events, results by correlation id,
rejections by code over a time range."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select

from gateway.services.errors import AccountNotFound
from gateway.services.runs import utc
from worker.db import get_engine
from worker.ledger.models import LedgerAccount, LedgerEventRecord, LedgerSnapshot

EVENTS, SNAPSHOTS, ACCOUNTS = LedgerEventRecord.__table__, LedgerSnapshot.__table__, LedgerAccount.__table__


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def account(account_id: str, last: int = 20) -> dict[str, Any]:
    """The account's shadow state and the snapshots (event, balance before and after, result) of its last events."""
    # A balance before or after (JSON null and a missing key both read as SQL NULL as text, on both databases).
    touched = or_(
        SNAPSHOTS.c.body[("before", account_id)].as_string().is_not(None),
        SNAPSHOTS.c.body[("after", account_id)].as_string().is_not(None),
    )
    with get_engine().connect() as connection:
        row = connection.execute(select(ACCOUNTS).where(ACCOUNTS.c.account == account_id)).first()
        if row is None:
            raise AccountNotFound(f"no account {account_id!r} in the shadow ledger")
        query = select(SNAPSHOTS.c.body, SNAPSHOTS.c.created_at).where(touched)
        snapshots = connection.execute(query.order_by(SNAPSHOTS.c.created_at.desc()).limit(last)).all()
    events = []
    for body, created_at in snapshots:
        result = body.get("result") or {}
        events.append({
            "event_id": result.get("event_id"), "event_type": result.get("event_type"), "status": result.get("status"),
            "codes": result.get("codes", []), "before": (body.get("before") or {}).get(account_id),
            "after": (body.get("after") or {}).get(account_id), "anomalies": result.get("anomalies", []),
            "at": _aware(created_at),
        })  # fmt: skip
    return {
        "account": row.account,
        "currency": row.currency,
        "balance": row.balance,
        "overdraft_limit": row.overdraft_limit,
        "closed": bool(row.closed),
        "last_sequence": row.last_sequence,
        "events": events,
    }


def by_correlation(correlation_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The stored results carrying a correlation id, newest first."""
    query = (
        select(EVENTS.c.result)
        .where(EVENTS.c.result["correlation_id"].as_string() == correlation_id)
        .order_by(EVENTS.c.processed_at.desc())
        .limit(limit)
    )
    with get_engine().connect() as connection:
        return [dict(r) for r in connection.execute(query).scalars()]


def rejections(since: datetime, until: datetime | None = None) -> dict[str, int]:
    """Rejected events per deciding code, processed in [since, until)."""
    query = select(EVENTS.c.code, func.count()).where(
        EVENTS.c.status == "rejected", EVENTS.c.processed_at >= utc(since)
    )
    if until is not None:
        query = query.where(EVENTS.c.processed_at < utc(until))
    with get_engine().connect() as connection:
        rows = connection.execute(query.group_by(EVENTS.c.code)).all()
    return {str(code or ""): int(n) for code, n in sorted(rows, key=lambda r: -r[1])}


def recent(limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
    """The latest quick-run results (of one status if given), newest first."""
    query = select(EVENTS.c.result, EVENTS.c.processed_at).order_by(EVENTS.c.processed_at.desc()).limit(limit)
    if status:
        query = query.where(EVENTS.c.status == status)
    with get_engine().connect() as connection:
        return [{**dict(result), "processed_at": _aware(at)} for result, at in connection.execute(query).all()]

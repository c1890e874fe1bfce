"""The run history: search with filters, newest first, paged by a cursor; cancel in bulk after a dry run."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, func, or_, select

from agents.errors import InvalidTransition
from agents.models import TERMINAL_STATUSES
from gateway.services import agents as agent_service
from gateway.services.errors import CountChanged, InvalidCursor
from worker.agents.models import AgentRun
from worker.db import get_engine

RUNS = AgentRun.__table__
# The most runs one bulk cancel acts on: a larger match is narrowed by its filter first.
MAX_BULK = 1000
SUMMARY_INPUT_CHARS = 200


@dataclass(frozen=True)
class RunFilter:
    """Which runs: every field narrows the match (None or empty: any)."""

    statuses: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    owner: str | None = None
    mode: str | None = None
    text: str | None = None
    error: str | None = None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, text: str, dialect: str) -> Any:
    """`column` holds `text`, whatever the case: SQLite's LIKE already ignores ASCII case (and its lower() knows no
    other), so lower() on every row would only triple the cost of a scan."""
    if dialect == "sqlite":
        return column.like(_like(text), escape="\\")
    return column.ilike(_like(text), escape="\\")


def _where(query: Select[Any], given: RunFilter, dialect: str = "sqlite") -> Select[Any]:
    if given.statuses:
        query = query.where(RUNS.c.status.in_(sorted(set(given.statuses))))
    # Stored in UTC (SQLite keeps the wall time without its offset): compared in UTC.
    if given.since is not None:
        query = query.where(RUNS.c.created_at >= utc(given.since))
    if given.until is not None:
        query = query.where(RUNS.c.created_at < utc(given.until))
    if given.owner is not None:
        query = query.where(RUNS.c.owner == given.owner)
    if given.mode is not None:
        query = query.where(RUNS.c.request["mode"].as_string() == given.mode)
    if given.text:
        stored = _contains(RUNS.c.input_text, given.text, dialect)
        # A run recorded by a worker that did not write input_text yet: its request's input, read out of the JSON.
        older = and_(RUNS.c.input_text.is_(None), _contains(RUNS.c.request["input"].as_string(), given.text, dialect))
        query = query.where(or_(stored, older))
    if given.error:
        query = query.where(_contains(RUNS.c.error, given.error, dialect))
    return query


def encode_cursor(created_at: datetime, run_id: str) -> str:
    """An opaque cursor: where the next page starts (after this run, newest first)."""
    raw = json.dumps([created_at.isoformat(), run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, run_id) inside a cursor; InvalidCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, run_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(run_id, str):
        raise InvalidCursor()
    return utc(moment), run_id


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """The moment in UTC; one beyond what UTC can spell (year 1 east of Greenwich, 9999 west) is clamped."""
    try:
        return _aware(value).astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if value.year < 2 else datetime.max.replace(tzinfo=UTC)


def _summary(row: Any) -> dict[str, Any]:
    request = row.request or {}
    return {
        "run_id": row.run_id,
        "status": row.status,
        "mode": request.get("mode", "planner"),
        "input": str(request.get("input", ""))[:SUMMARY_INPUT_CHARS],
        "owner": row.owner,
        "error": row.error,
        "created_at": _aware(row.created_at),
        "updated_at": _aware(row.updated_at),
    }


def search(
    given: RunFilter, limit: int = 50, cursor: str | None = None, engine: Engine | None = None
) -> dict[str, Any]:
    """One page of matching runs, newest first, and the cursor of the next page (None on the last)."""
    columns = (RUNS.c.run_id, RUNS.c.status, RUNS.c.request, RUNS.c.owner, RUNS.c.error, RUNS.c.created_at,
               RUNS.c.updated_at)  # fmt: skip
    engine = engine or get_engine()
    query = _where(select(*columns), given, engine.dialect.name)
    if cursor:
        at, run_id = decode_cursor(cursor)
        query = query.where(or_(RUNS.c.created_at < at, and_(RUNS.c.created_at == at, RUNS.c.run_id < run_id)))
    query = query.order_by(RUNS.c.created_at.desc(), RUNS.c.run_id.desc()).limit(limit + 1)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    page = rows[:limit]
    following = encode_cursor(_aware(page[-1].created_at), page[-1].run_id) if len(rows) > limit else None
    return {"runs": [_summary(r) for r in page], "next_cursor": following}


def _active(given: RunFilter) -> RunFilter:
    """The filter narrowed to runs that can still be cancelled."""
    from agents.models import RUN_STATUSES

    active = tuple(s for s in RUN_STATUSES if s not in TERMINAL_STATUSES)
    statuses = tuple(s for s in given.statuses if s in active) if given.statuses else active
    return RunFilter(**{**given.__dict__, "statuses": statuses or ("-none-",)})


def count_cancellable(given: RunFilter) -> int:
    """How many runs a bulk cancel with this filter would cancel."""
    engine = get_engine()
    query = _where(select(func.count()).select_from(RUNS), _active(given), engine.dialect.name)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def cancel_matching(given: RunFilter, expected: int, actor: str) -> dict[str, Any]:
    """Cancel every active run the filter matches, when they are still the `expected` number (the dry run's).

    CountChanged when the match grew or shrank since (or exceeds MAX_BULK): nothing is cancelled then.
    """
    found = count_cancellable(given)
    if found != expected or found > MAX_BULK:
        raise CountChanged(f"the filter matches {found} cancellable runs, not {expected}: count again"
                           + (f" (at most {MAX_BULK} at once)" if found > MAX_BULK else ""))  # fmt: skip
    engine = get_engine()
    query = _where(select(RUNS.c.run_id), _active(given), engine.dialect.name)
    query = query.order_by(RUNS.c.created_at.desc()).limit(MAX_BULK)
    with engine.connect() as connection:
        run_ids = list(connection.execute(query).scalars())
    cancelled, skipped = [], []
    for run_id in run_ids:
        try:
            agent_service.cancel(run_id, actor=actor)
            cancelled.append(run_id)
        except InvalidTransition:
            skipped.append(run_id)  # it ended meanwhile
    return {"cancelled": cancelled, "already_ended": skipped}

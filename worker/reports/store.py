"""SQL side of the reports domain: move telemetry from Redis, read aggregates, store reports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from beat.aggregates import HostSample, MinuteAggregate
from worker.agents.models import AgentRun, AgentStage
from worker.db import session_scope
from worker.ledger.models import LedgerAlert
from worker.ledger.models import LedgerEventRecord as Event
from worker.reports.models import Alert, HostMinute, MetricMinute, StatusReport
from worker.telemetry import KEY_PREFIX, MINUTES_KEY, parse_hash

log = logging.getLogger("fleet.reports")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _add(session: Session, agg: MinuteAggregate) -> None:
    row = session.scalars(
        select(MetricMinute).where(
            MetricMinute.minute == agg.minute,
            MetricMinute.kind == agg.kind,
            MetricMinute.name == agg.name,
            MetricMinute.grp == agg.group,
        )
    ).one_or_none()
    if row is None:
        fields = asdict(agg)
        fields["grp"] = fields.pop("group")
        session.add(MetricMinute(**fields))
        return
    mine = to_aggregate(row)
    mine.merge(agg)
    for name in ("count", "failures", "retries", "runtime_sum", "runtime_max", "wait_sum", "wait_count", "wait_max"):
        setattr(row, name, getattr(mine, name))
    row.buckets = list(mine.buckets)


def move_telemetry(redis_client: Any, engine: Engine | None = None, before: float | None = None) -> int:
    """Move the Redis minute hashes (all, or those before `before` epoch) into SQL rows; returns rows."""
    moved = 0
    for raw in sorted(redis_client.smembers(MINUTES_KEY)):
        minute = int(raw)
        if before is not None and minute >= before:
            continue
        claim = f"{KEY_PREFIX}claim:{minute}:{id(redis_client)}:{datetime.now(UTC).timestamp()}"
        try:
            # RENAME is atomic: two collectors never read (and add) the same fields twice.
            redis_client.rename(f"{KEY_PREFIX}{minute}", claim)
        except ResponseError:
            redis_client.srem(MINUTES_KEY, raw)
            continue
        rows = parse_hash(minute, redis_client.hgetall(claim))
        with session_scope(engine) as session:
            for agg in rows:
                _add(session, agg)
        redis_client.delete(claim)
        moved += len(rows)
    return moved


def to_aggregate(row: MetricMinute) -> MinuteAggregate:
    """The pure aggregate of a row."""
    return MinuteAggregate(
        minute=_utc(row.minute),
        kind=row.kind,
        name=row.name,
        group=row.grp,
        count=row.count,
        failures=row.failures,
        retries=row.retries,
        runtime_sum=row.runtime_sum,
        runtime_max=row.runtime_max,
        wait_sum=row.wait_sum,
        wait_count=row.wait_count,
        wait_max=row.wait_max,
        buckets=list(row.buckets),
    )


def load_aggregates(start: datetime, end: datetime, engine: Engine | None = None) -> list[MinuteAggregate]:
    """Per-minute aggregates of the period."""
    with session_scope(engine) as session:
        rows = session.scalars(select(MetricMinute).where(MetricMinute.minute >= start, MetricMinute.minute < end))
        return [to_aggregate(row) for row in rows]


def save_host_sample(sample: HostSample, engine: Engine | None = None) -> None:
    """Store one host sample; a second sample of the same minute replaces the first."""
    fields = asdict(sample)
    with session_scope(engine) as session:
        row = session.scalars(select(HostMinute).where(HostMinute.minute == sample.minute)).one_or_none()
        if row is None:
            session.add(HostMinute(**fields))
        else:
            for key, value in fields.items():
                setattr(row, key, value)


def load_hosts(start: datetime, end: datetime, engine: Engine | None = None) -> list[HostSample]:
    """Host samples of the period."""
    names = [f for f in HostSample.__dataclass_fields__ if f != "minute"]
    with session_scope(engine) as session:
        rows = session.scalars(select(HostMinute).where(HostMinute.minute >= start, HostMinute.minute < end))
        return [HostSample(minute=_utc(r.minute), **{n: getattr(r, n) for n in names}) for r in rows]


def last_sample_at(engine: Engine | None = None) -> datetime | None:
    """When collect_metrics last stored a host sample."""
    with session_scope(engine) as session:
        value = session.scalar(select(func.max(HostMinute.minute)))
    return _utc(value) if value is not None else None


def first_seen(engine: Engine | None = None) -> datetime | None:
    """The fleet's first trace: its oldest metrics sample or report; None for a brand-new fleet."""
    with session_scope(engine) as session:
        sample = session.scalar(select(func.min(HostMinute.minute)))
        report = session.scalar(select(func.min(StatusReport.created_at)))
    found = [_utc(value) for value in (sample, report) if value is not None]
    return min(found) if found else None


def get_report(day: date, engine: Engine | None = None) -> StatusReport | None:
    """The stored report of a date."""
    with session_scope(engine) as session:
        return session.scalars(select(StatusReport).where(StatusReport.report_date == day)).one_or_none()


def latest_report(engine: Engine | None = None) -> StatusReport | None:
    """The newest stored report."""
    with session_scope(engine) as session:
        return session.scalars(select(StatusReport).order_by(StatusReport.report_date.desc()).limit(1)).first()


def history(
    day: date, days: int, engine: Engine | None = None
) -> tuple[dict[str, float] | None, list[dict[str, float]]]:
    """Signal means of the previous day's report and of the reports of the `days` before `day`."""
    with session_scope(engine) as session:
        rows = session.scalars(
            select(StatusReport).where(
                StatusReport.report_date < day, StatusReport.report_date >= day - timedelta(days=days)
            )
        ).all()
    means = {row.report_date: dict(row.figures.get("signal_means") or {}) for row in rows}
    return means.get(day - timedelta(days=1)), list(means.values())


def store_report(
    values: dict[str, Any], issues: Sequence[dict[str, Any]], replace: bool, engine: Engine | None = None
) -> bool:
    """Insert the report (and an alert per issue); False when one exists for the date and not `replace`."""
    try:
        with session_scope(engine) as session:
            existing = session.scalars(
                select(StatusReport).where(StatusReport.report_date == values["report_date"])
            ).one_or_none()
            if existing is not None and not replace:
                return False
            if existing is not None:
                session.delete(existing)
                session.query(Alert).filter(Alert.report_date == values["report_date"]).delete()
                session.flush()
            session.add(StatusReport(**values))
            for issue in issues:
                session.add(
                    Alert(
                        report_date=values["report_date"],
                        issue_id=issue["id"],
                        priority=issue["priority"],
                        title=issue["title"][:256],
                        components=issue["components"],
                    )
                )
    except IntegrityError:
        # Another beat (or a manual run) stored this date's report first: exactly one per day.
        log.info("report of %s already stored by another process", values["report_date"], extra={"category": "system"})
        return False
    return True


def mark_notified(day: date, channel: str, outcome: str, engine: Engine | None = None) -> None:
    """Record a notification outcome on the report's alerts and figures."""
    with session_scope(engine) as session:
        report = session.scalars(select(StatusReport).where(StatusReport.report_date == day)).one_or_none()
        if report is not None:
            report.figures = {**report.figures, "notified": {**report.figures.get("notified", {}), channel: outcome}}
        for alert in session.scalars(select(Alert).where(Alert.report_date == day)):
            alert.notified = {**alert.notified, channel: outcome}


def _tables(engine: Engine, *names: str) -> bool:
    present = set(inspect(engine).get_table_names())
    return all(name in present for name in names)


def ledger_figures(engine: Engine, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Quick runs of the period: events by status, time to decision, anomaly alerts; None before the tables exist."""
    if not _tables(engine, "ledger_events", "ledger_alerts"):
        return None

    period = [Event.processed_at >= start, Event.processed_at < end]
    with session_scope(engine) as session:
        by_status = dict(
            session.execute(select(Event.status, func.count()).where(*period).group_by(Event.status)).all()
        )
        mean_ms, max_ms = session.execute(select(func.avg(Event.ttd_ms), func.max(Event.ttd_ms)).where(*period)).one()
        alerts = dict(
            session.execute(
                select(LedgerAlert.kind, func.count())
                .where(LedgerAlert.at >= start, LedgerAlert.at < end)
                .group_by(LedgerAlert.kind)
            ).all()
        )
    total = sum(by_status.values())
    rejected = by_status.get("rejected", 0)
    return {
        "events": total,
        "by status": by_status,
        "rejection rate %": round(100.0 * rejected / total, 2) if total else 0.0,
        "time to decision ms (mean / max)": f"{mean_ms or 0:.1f} / {max_ms or 0:.1f}",
        "anomaly alerts": alerts,
    }


def agent_figures(engine: Engine, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Workflow runs of the period by status, and per stage: count, mean duration, tokens, cost."""
    if not _tables(engine, "agent_runs", "agent_stages"):
        return None

    with session_scope(engine) as session:
        runs = dict(
            session.execute(
                select(AgentRun.status, func.count())
                .where(AgentRun.created_at >= start, AgentRun.created_at < end)
                .group_by(AgentRun.status)
            ).all()
        )
        stages = session.execute(
            select(
                AgentStage.stage,
                func.count(),
                func.avg(AgentStage.duration_ms),
                func.sum(AgentStage.prompt_tokens + AgentStage.completion_tokens),
                func.sum(AgentStage.cost),
            )
            .where(AgentStage.started_at >= start, AgentStage.started_at < end)
            .group_by(AgentStage.stage)
        ).all()
    total = sum(runs.values())
    return {
        "runs": total,
        "by status": runs,
        "success rate %": round(100.0 * runs.get("succeeded", 0) / total, 2) if total else 0.0,
        "stages (count, mean ms, tokens, cost)": {
            stage: f"{count}, {mean or 0:.0f} ms, {tokens or 0} tokens, {cost or 0:.4f}"
            for stage, count, mean, tokens, cost in stages
        },
    }

"""SQL side of user schedules: the durable list beat reads on every loop (no restart to add or remove one)."""

from __future__ import annotations

from typing import Any

from celery.schedules import ParseException, crontab
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from beat.errors import ScheduleAlreadyExists, ScheduleInvalid, ScheduleNotFound
from beat.user_schedules import ScheduleSpec, check_target, cron_fields
from worker.constants import QUEUES, TASK_NAMES
from worker.db import session_scope
from worker.models.core import utcnow
from worker.reports.models import UserSchedule


def _record(row: UserSchedule, timezone: str) -> dict[str, Any]:
    return {
        "name": row.name,
        "task": row.task,
        "cron": row.cron,
        "timezone": timezone,
        "args": list(row.args or []),
        "kwargs": dict(row.kwargs or {}),
        "queue": row.queue,
        "priority": row.priority,
        "enabled": row.enabled,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def as_crontab(expression: str) -> crontab:
    """Celery's crontab for the expression; ScheduleInvalid with Celery's reason when it cannot run."""
    try:
        return crontab(**cron_fields(expression))
    except (ValueError, ParseException) as exc:
        raise ScheduleInvalid(f"cron {expression!r}: {exc}") from None


def list_schedules(timezone: str, engine: Engine | None = None) -> list[dict[str, Any]]:
    """Every user schedule, by name."""
    with session_scope(engine) as session:
        return [_record(row, timezone) for row in session.scalars(select(UserSchedule).order_by(UserSchedule.name))]


def add_schedule(
    spec: ScheduleSpec, timezone: str, created_by: str | None = None, engine: Engine | None = None
) -> dict[str, Any]:
    """Store a new schedule; ScheduleInvalid for an unknown task or queue, ScheduleAlreadyExists for a taken name."""
    check_target(spec, TASK_NAMES, QUEUES)
    as_crontab(spec.cron)
    now = utcnow()
    try:
        with session_scope(engine) as session:
            row = UserSchedule(
                name=spec.name,
                task=spec.task,
                cron=spec.cron,
                args=list(spec.args),
                kwargs=dict(spec.kwargs),
                queue=spec.queue,
                priority=spec.priority,
                enabled=spec.enabled,
                created_by=created_by,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return _record(row, timezone)
    except IntegrityError:
        raise ScheduleAlreadyExists(
            f"a schedule named {spec.name!r} exists; remove it first or pick another name"
        ) from None


def remove_schedule(name: str, engine: Engine | None = None) -> None:
    """Delete a schedule; ScheduleNotFound when none has that name."""
    with session_scope(engine) as session:
        row = session.get(UserSchedule, name)
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r}")
        session.delete(row)


def set_enabled(name: str, enabled: bool, timezone: str, engine: Engine | None = None) -> dict[str, Any]:
    """Pause or resume a schedule; ScheduleNotFound when none has that name."""
    with session_scope(engine) as session:
        row = session.get(UserSchedule, name)
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r}")
        row.enabled = enabled
        row.updated_at = utcnow()
        session.flush()
        return _record(row, timezone)


def enabled_specs(engine: Engine | None = None) -> list[ScheduleSpec]:
    """The schedules beat must run now (paused ones left out)."""
    with session_scope(engine) as session:
        rows = session.scalars(select(UserSchedule).where(UserSchedule.enabled.is_(True)))
        return [
            ScheduleSpec(
                name=row.name,
                task=row.task,
                cron=row.cron,
                args=list(row.args or []),
                kwargs=dict(row.kwargs or {}),
                queue=row.queue,
                priority=row.priority,
            )
            for row in rows
        ]

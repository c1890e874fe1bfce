"""Celery adapters of the beat package: parse, call the pure code, persist, return JSON."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from beat.errors import NotificationFailed
from worker import notify
from worker.application import task
from worker.reports import service as reporting

log = logging.getLogger("fleet.reports")


@task(name="reports.collect_metrics", bind=True, acks_late=True, ignore_result=True)
def collect_metrics(self: Any) -> dict[str, Any]:
    """Move the finished minutes of telemetry into SQL and store a host sample."""
    return reporting.collect()


@task(
    name="reports.daily_status",
    bind=True,
    acks_late=True,
    # Transient: the database or Redis did not answer. Safe to rerun: one report per date, insert-or-skip.
    # 10, 20, 40, 80, 160 s: an outage of up to five minutes; no jitter (one task), so no draw can shorten it.
    autoretry_for=(SQLAlchemyOperationalError, RedisConnectionError),
    max_retries=5,
    retry_backoff=10,
    retry_jitter=False,
)
def daily_status(self: Any, day: str | None = None, trigger: str = "schedule") -> dict[str, Any]:
    """Make the day's report once (a second beat's run finds it stored) and queue its notifications."""
    result = reporting.generate(date.fromisoformat(day) if day else None, trigger=trigger, replace=False)
    if result["stored"]:
        for channel in notify.channels(result["health"], len(result["issues"])):
            send_notification.apply_async((result["date"], channel), queue="reports", priority=3)
    return result


@task(
    name="reports.notify",
    bind=True,
    acks_late=True,
    autoretry_for=(NotificationFailed,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=False,
    max_retries=6,
)
def send_notification(self: Any, day: str, channel: str) -> dict[str, str]:
    """Send a stored report to one channel; a failure is logged and retried with backoff."""
    return {"date": day, "channel": channel, "outcome": notify.send(date.fromisoformat(day), channel)}

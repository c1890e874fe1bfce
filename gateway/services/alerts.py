"""What `agent alerts` and `GET /api/v1/alerts` show and do: open incidents, history, silences, a test send."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def overview() -> dict[str, Any]:
    """Firing and pending incidents, running silences and the evaluator holding the lease."""
    from worker import alerts
    from worker.redis_client import get_redis

    client = get_redis()
    incidents = sorted(alerts.open_incidents(client).values(), key=lambda i: (i.state != "firing", i.since))
    return {
        "evaluator": alerts.holder(client),
        "incidents": [
            {**i.to_json(), "since": _iso(i.since), "fired_at": _iso(i.fired_at), "last_sent_at": _iso(i.last_sent_at)}
            for i in incidents
        ],
        "silences": {rule: _iso(until) for rule, until in alerts.silences(client).items()},
    }


def history(hours: float = 24.0, limit: int = 500) -> list[dict[str, Any]]:
    """Transitions of the last `hours`, newest first."""
    from worker.db import session_scope
    from worker.models.alerts import AlertEvent

    since = datetime.now(UTC) - timedelta(hours=hours)
    with session_scope() as session:
        rows = session.scalars(
            select(AlertEvent).where(AlertEvent.at >= since).order_by(AlertEvent.id.desc()).limit(limit)
        ).all()
        return [
            {
                "at": row.at.isoformat(),
                "incident_id": row.incident_id,
                "rule": row.rule,
                "labels": row.labels,
                "state": row.state,
                "severity": row.severity,
                "summary": row.summary,
            }
            for row in rows
        ]


def known_rules() -> list[str]:
    """Built-in rule names and the custom ones of FLEET_CONFIG."""
    from beat.alert_config import BUILT_IN, alerts_config
    from worker.settings import get_settings

    config = alerts_config(get_settings().section("alerts"))
    return [*BUILT_IN, *(rule.name for rule in config.custom)]


def silence(rule: str, seconds: float) -> str:
    """Silence a rule's notifications; returns until when (ISO)."""
    from worker import alerts
    from worker.redis_client import get_redis

    return _iso(alerts.silence(get_redis(), rule, seconds)) or ""


def unsilence(rule: str) -> bool:
    """End a rule's silence; False when it had none."""
    from worker import alerts
    from worker.redis_client import get_redis

    return alerts.unsilence(get_redis(), rule)


def send_test(kind: str | None = None) -> dict[str, bool]:
    """Send one `alert.firing` of a rule named `test` to every configured channel (or those of one kind: webhook,
    slack, email), once each: channel -> taken."""
    from beat.alert_config import alerts_config
    from beat.incidents import Incident, Notification
    from worker.alert_channels import channels, deliver
    from worker.notify import config as notifications
    from worker.settings import get_settings

    now = time.time()
    incident = Incident(
        f"inc_test_{int(now)}",
        "test",
        (),
        "warning",
        "firing",
        now,
        0.0,
        "a test sent by `agent alerts test`",
        fired_at=now,
        last_sent_at=now,
        sends=1,
    )
    notification = Notification("alert.firing", incident, now)
    config = alerts_config(get_settings().section("alerts"))
    targets = [c for c in channels(config, notifications()) if kind is None or c.kind == kind]
    return {f"{c.kind} {c.target}": deliver(notification, c, attempts=1) for c in targets}

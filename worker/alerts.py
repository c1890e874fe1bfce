"""The alert evaluator: a thread in every long-lived fleet process; the one holding the Redis lease evaluates.

Beat, the API and every worker's main process each start one. They contend for one lease (SET NX PX, renewed
by a compare-and-renew script); the holder samples the fleet every `alerts.evaluate_every_s`, advances the
incidents (beat/incidents.py) and sends the notifications. When it dies its lease expires and another process
takes over within `lease_s` + `evaluate_every_s`. Open incidents and silences live in Redis, so the new holder
continues them; the history of transitions and deliveries is in SQL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from beat.alert_config import AlertsConfig, alerts_config
from beat.alert_rules import evaluate
from beat.errors import ReportConfigError
from beat.incidents import Incident, Step, Transition, step
from worker import alert_channels, alert_sampler
from worker.constants import REDIS_KEY_PREFIX
from worker.telemetry import muted

log = logging.getLogger("fleet.alerts")

LEASE_KEY = REDIS_KEY_PREFIX + "alerts:leader"
INCIDENTS_KEY = REDIS_KEY_PREFIX + "alerts:incidents"
SILENCES_KEY = REDIS_KEY_PREFIX + "alerts:silences"

# Renew or release only a lease this process still holds: another may have taken it after a long pause.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Lease:
    """Leadership among the evaluators: a Redis key holding its owner's id, with an expiry."""

    def __init__(self, redis_client: Any, owner: str, ttl_s: float, key: str = LEASE_KEY) -> None:
        self.redis, self.owner, self.ttl_ms, self.key = redis_client, owner, int(ttl_s * 1000), key

    def hold(self) -> bool:
        """Renew the lease if this owner has it, else take it if free; True when this owner holds it now."""
        if self.redis.eval(_RENEW, 1, self.key, self.owner, self.ttl_ms):
            return True
        return bool(self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        """Give the lease up (a clean shutdown), so another process takes over at once."""
        self.redis.eval(_RELEASE, 1, self.key, self.owner)


def holder(redis_client: Any) -> str | None:
    """The owner id of the evaluator holding the lease, if any."""
    raw = redis_client.get(LEASE_KEY)
    return raw.decode() if isinstance(raw, bytes) else raw


def open_incidents(redis_client: Any) -> dict[str, Incident]:
    """The pending and firing incidents, by key."""
    return {_text(k): Incident.from_json(json.loads(v)) for k, v in redis_client.hgetall(INCIDENTS_KEY).items()}


def silences(redis_client: Any, now: float | None = None) -> dict[str, float]:
    """Rule -> until (epoch seconds) of the silences still running."""
    now = time.time() if now is None else now
    out = {_text(k): float(v) for k, v in redis_client.hgetall(SILENCES_KEY).items()}
    return {rule: until for rule, until in out.items() if until > now}


def silence(redis_client: Any, rule: str, seconds: float) -> float:
    """Silence a rule's notifications for `seconds` from now; returns until when."""
    until = time.time() + seconds
    redis_client.hset(SILENCES_KEY, rule, until)
    return until


def unsilence(redis_client: Any, rule: str) -> bool:
    """End a rule's silence; False when it had none."""
    return bool(redis_client.hdel(SILENCES_KEY, rule))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _save(redis_client: Any, before: dict[str, Incident], result: Step) -> None:
    pipe = redis_client.pipeline()
    gone = [key for key in before if key not in result.incidents]
    if gone:
        pipe.hdel(INCIDENTS_KEY, *gone)
    if result.incidents:
        pipe.hset(INCIDENTS_KEY, mapping={k: json.dumps(i.to_json()) for k, i in result.incidents.items()})
    pipe.execute()


def _history(transitions: list[Transition]) -> None:
    from worker.db import session_scope
    from worker.models.alerts import AlertEvent

    if not transitions:
        return
    try:
        with session_scope() as session:
            session.add_all(
                AlertEvent(
                    at=datetime.fromtimestamp(t.at, UTC),
                    incident_id=t.incident_id,
                    rule=t.rule,
                    labels=dict(t.labels),
                    state=t.state,
                    severity=t.severity,
                    summary=t.summary[:2000],
                    value=t.value,
                )
                for t in transitions
            )
    except SQLAlchemyError as exc:
        log.warning("alert history not stored: %s", exc, extra={"category": "system"})
    for t in transitions:
        level = logging.WARNING if t.state == "firing" else logging.INFO
        log.log(
            level,
            "alert %s %s: %s",
            t.rule,
            t.state,
            t.summary,
            extra={"category": "system", "rule": t.rule, "labels": dict(t.labels), "incident": t.incident_id},
        )


def incidents_between(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Incidents that fired in [start, end), each with when it resolved (None while it still fires)."""
    from sqlalchemy import select

    from worker.db import session_scope
    from worker.models.alerts import AlertEvent

    try:
        with session_scope() as session:
            fired = session.scalars(
                select(AlertEvent).where(AlertEvent.state == "firing", AlertEvent.at >= start, AlertEvent.at < end)
            ).all()
            ids = [row.incident_id for row in fired]
            resolved = (
                dict(
                    session.execute(
                        select(AlertEvent.incident_id, AlertEvent.at).where(
                            AlertEvent.state == "resolved", AlertEvent.incident_id.in_(ids)
                        )
                    ).all()
                )
                if ids
                else {}
            )
            return [
                {
                    "rule": row.rule,
                    "labels": row.labels,
                    "severity": row.severity,
                    "summary": row.summary,
                    "fired_at": _minute(row.at),
                    "resolved_at": _minute(resolved[row.incident_id]) if row.incident_id in resolved else None,
                }
                for row in fired
            ]
    except SQLAlchemyError as exc:  # a database without the alerts tables yet: the report goes on without them
        log.warning("alert incidents unavailable for the report: %s", exc, extra={"category": "system"})
        return []


def _minute(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat(timespec="minutes")


class Evaluator:
    """One process's contender: holds the lease or waits for it; the holder evaluates."""

    def __init__(self, config: AlertsConfig, redis_factory: Callable[[], Any], app: Any, process: str) -> None:
        self.config, self.redis_factory, self.app, self.process = config, redis_factory, app, process
        self.owner = f"{process}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.history: deque[tuple[float, dict[str, Any]]] = deque()
        self.stop_event = threading.Event()
        self.dispatcher = alert_channels.Dispatcher()
        self.leading = False
        self.evaluations = 0

    def tick(self) -> Step | None:
        """One turn: report this host, hold the lease, and evaluate when held; None when another process leads."""
        client = self.redis_factory()
        alert_sampler.publish_host(client, self.process)
        lease = Lease(client, self.owner, self.config.lease_s)
        leading = lease.hold()
        if leading != self.leading:
            log.info(
                "alert evaluator %s %s the lease",
                self.owner,
                "took" if leading else "lost",
                extra={"category": "system"},
            )
            self.leading = leading
            self.history.clear()  # a leader's rates start from its own samples
        if not leading:
            return None
        with muted():  # the evaluator's own SQL is not the fleet's latency
            return self.evaluate(client)

    def evaluate(self, client: Any) -> Step:
        """Sample, advance the incidents, store them and their history, send the notifications."""
        now = time.time()
        self.history.append((now, alert_sampler.sample(self.config, client, self.app)))
        longest = max(
            [
                r.window_s
                for r in (self.config.rule(n) for n in ("task_error_rate", "queue_growing", "ledger_rejection_rate"))
            ]
            + [c.rate_over_s or 0 for c in self.config.custom]
        )
        while len(self.history) > 2 and self.history[1][0] <= now - longest:
            self.history.popleft()
        findings = evaluate(list(self.history), self.config)
        before = open_incidents(client)
        result = step(before, findings, now, self.config.repeat_after_s, silences(client, now))
        _save(client, before, result)
        _history(result.transitions)
        if result.notifications:
            self.dispatcher.submit(result.notifications, self._channels())
        self.evaluations += 1
        return result

    def _channels(self) -> list[alert_channels.Channel]:
        from worker.notify import config as notifications

        return alert_channels.channels(self.config, notifications())

    def run(self) -> None:
        """Tick every `evaluate_every_s` until stopped; an unreachable broker only skips a turn."""
        while not self.stop_event.is_set():
            try:
                self.tick()
            except (RedisError, OSError, ReportConfigError) as exc:
                log.warning("alert evaluation skipped: %s", exc, extra={"category": "system"})
            except Exception:  # a fault in one evaluation must not end the thread: the next turn tries again
                log.exception("alert evaluation failed", extra={"category": "system"})
            self.stop_event.wait(self.config.evaluate_every_s)

    def stop(self) -> None:
        """Stop ticking and hand the lease over at once."""
        self.stop_event.set()
        with contextlib.suppress(RedisError, OSError):  # it expires on its own
            Lease(self.redis_factory(), self.owner, self.config.lease_s).release()
        self.dispatcher.close()


_running: dict[int, Evaluator] = {}


def start(process: str) -> Evaluator | None:
    """Start this process's evaluator thread (once per process); None when alerts are off or misconfigured."""
    from worker.application import get_app
    from worker.redis_client import get_redis
    from worker.settings import get_settings

    if os.getpid() in _running:
        return _running[os.getpid()]
    try:
        config = alerts_config(get_settings().section("alerts"))
    except ReportConfigError as exc:
        log.error("alerts are off: %s", exc, extra={"category": "system"})
        return None
    if not config.enabled:
        return None
    evaluator = _running[os.getpid()] = Evaluator(config, get_redis, get_app(), process)
    threading.Thread(target=evaluator.run, name="fleet-alerts", daemon=True).start()
    return evaluator


def stop() -> None:
    """Stop this process's evaluator, if it runs."""
    evaluator = _running.pop(os.getpid(), None)
    if evaluator is not None:
        evaluator.stop()


def install() -> None:
    """Start an evaluator in a worker's main process (once it is ready) and in beat; stop it at shutdown."""
    from celery import signals

    signals.worker_ready.connect(lambda sender=None, **_: start("worker"), weak=False)
    signals.worker_shutdown.connect(lambda **_: stop(), weak=False)
    signals.beat_init.connect(lambda sender=None, **_: start("beat"), weak=False)

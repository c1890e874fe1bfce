"""What the alert evaluator measures at one instant: broker, database, workers, hosts and every exported metric.

Each source is read on its own: one that fails (the database down, say) is left out of the sample and logged,
and the rules that read the others still run.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from beat.alert_config import AlertsConfig
from beat.alert_rules import Labels, labels_of
from worker.constants import QUEUES, REDIS_KEY_PREFIX
from worker.errors import DatabaseUnavailable
from worker.fleet_status import priority_lists, queue_depths, workers_online

log = logging.getLogger("fleet.alerts")

HOSTS_KEY = REDIS_KEY_PREFIX + "alerts:hosts"
SENT_HEADER = "x_sent_at"
Sample = dict[str, dict[Labels, float]]


def memory_used_percent() -> float:
    """Memory in use against the limit: the cgroup's (a container's) when it has one, else the machine's."""
    limit_file, usage_file = Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")
    try:
        limit = limit_file.read_text().strip()
        if limit != "max":
            return 100.0 * int(usage_file.read_text()) / int(limit)
    except (OSError, ValueError):
        pass
    return float(psutil.virtual_memory().percent)


def publish_host(redis_client: Any, process: str) -> None:
    """Every evaluating process (leader or not) says how full its host's memory is, for `worker_memory`."""
    host = socket.gethostname()
    entry = json.dumps({"percent": memory_used_percent(), "at": time.time(), "process": process})
    redis_client.hset(HOSTS_KEY, host, entry)


def _hosts(redis_client: Any, fresh_s: float) -> dict[Labels, float]:
    out = {}
    now = time.time()
    for host, raw in redis_client.hgetall(HOSTS_KEY).items():
        entry = json.loads(raw)
        if now - float(entry["at"]) <= fresh_s:
            out[labels_of(host=host.decode() if isinstance(host, bytes) else str(host))] = float(entry["percent"])
    return out


KNOWN_QUEUES_KEY = REDIS_KEY_PREFIX + "alerts:queues"


def known_queues(redis_client: Any, online: dict[str, list[str]]) -> tuple[str, ...]:
    """The fleet's queues and every queue a worker was ever seen consuming (`agents-<name>` ones), remembered in
    Redis: a queue whose only worker died is still watched, by this evaluator and the next."""
    seen = {q for queues in online.values() for q in queues}
    if seen:
        redis_client.sadd(KNOWN_QUEUES_KEY, *sorted(seen))
    remembered = {q.decode() if isinstance(q, bytes) else str(q) for q in redis_client.smembers(KNOWN_QUEUES_KEY)}
    return tuple(sorted({*QUEUES, *seen, *remembered}))


def oldest_ages(redis_client: Any, now: float, queues: tuple[str, ...] = QUEUES) -> dict[Labels, float]:
    """Seconds since the oldest waiting message of each queue was published (kombu pushes left, pops right)."""
    pipe = redis_client.pipeline(transaction=False)
    for queue in queues:
        for name in priority_lists(queue):
            pipe.lindex(name, -1)
    tails = iter(pipe.execute())
    out = {}
    for queue in queues:
        sent = []
        for _name in priority_lists(queue):
            raw = next(tails)
            if raw is None:
                continue
            try:
                stamp = json.loads(raw).get("headers", {}).get(SENT_HEADER)
            except (ValueError, AttributeError):
                continue
            if isinstance(stamp, int | float):
                sent.append(float(stamp))
        if sent:
            out[labels_of(queue=queue)] = max(0.0, now - min(sent))
    return out


def consumers(online: dict[str, list[str]], queues: tuple[str, ...]) -> dict[Labels, float]:
    """Workers consuming each queue, from the replies to one broadcast (`workers_online`)."""
    return {labels_of(queue=q): float(sum(q in served for served in online.values())) for q in queues}


def _counts_since(model: Any, column: str, since: datetime) -> dict[Labels, float]:
    from worker.db import session_scope

    group = getattr(model, column)
    with session_scope() as session:
        rows = session.execute(select(group, func.count()).where(model.at >= since).group_by(group)).all()
    return {labels_of(**{column: str(value or "")}): float(count) for value, count in rows}


def exported(render: Callable[[], bytes], wanted: frozenset[str] | None = None) -> Sample:
    """The samples of the Prometheus exposition by sample name (`celery_task_failed_total`, ...): all, or those
    named in `wanted` (the parser is pure Python: lines no rule reads are dropped before it sees them)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = render().decode()
    if wanted is not None:
        text = "\n".join(line for line in text.splitlines() if line[:1] != "#" and _sample_name(line) in wanted) + "\n"
    out: Sample = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            series = out.setdefault(sample.name, {})
            series[labels] = series.get(labels, 0.0) + float(sample.value)
    return out


def _sample_name(line: str) -> str:
    end = len(line)
    for mark in ("{", " "):
        at = line.find(mark)
        if 0 <= at < end:
            end = at
    return line[:end]


# The exported samples the built-in rules read; custom rules add theirs.
BUILT_IN_EXPORTED = frozenset({"celery_task_failed_total", "celery_task_succeeded_total", "ledger_events_total"})


def _prometheus_text() -> bytes:
    from worker.metrics import render_latest

    return render_latest()[0]  # without the app: no broker gauges (the rules read queue depths themselves)


def _report_missing() -> float:
    from beat.schedule import missed_report_due
    from worker.reports import service as reporting
    from worker.reports import store

    ctx = reporting.context()
    now_local = datetime.now(UTC).astimezone(ctx.zone)
    has_report = store.get_report(now_local.date()) is not None
    grace = timedelta(minutes=ctx.config.late_grace_minutes)
    return 1.0 if missed_report_due(now_local - grace, has_report, ctx.config, store.first_seen()) else 0.0


def sample(config: AlertsConfig, redis_client: Any, app: Any, ping_timeout: float = 1.0) -> Sample:
    """One sample of everything the built-in rules read, plus every exported metric for the custom rules."""
    from worker import db
    from worker.ledger.models import LedgerAlert
    from worker.models.core import DeadLetter

    now = time.time()
    out: Sample = {}

    def take(what: str, read: Callable[[], dict[Labels, float]], *names: str) -> None:
        try:
            values = read()
        except (RedisError, SQLAlchemyError, DatabaseUnavailable, OSError, KombuOperationalError, ValueError) as exc:
            log.warning("alerts: %s unavailable this evaluation: %s", what, exc, extra={"category": "system"})
            return
        for name in names:
            out[name] = values

    queues = QUEUES
    try:
        online: dict[str, list[str]] | None = workers_online(app, timeout=ping_timeout)
    except (OSError, KombuOperationalError) as exc:
        log.warning("alerts: workers unavailable this evaluation: %s", exc, extra={"category": "system"})
        online = None
    try:
        queues = known_queues(redis_client, online or {})
    except RedisError as exc:
        log.warning("alerts: known queues unavailable this evaluation: %s", exc, extra={"category": "system"})
    if online is not None:  # without the workers' answers, no rule may conclude that none consumes
        out["fleet_queue_consumers"] = consumers(online, queues)
    started = time.perf_counter()
    take(
        "queue depths",
        lambda: {labels_of(queue=q): float(n) for q, n in queue_depths(redis_client, queues).items()},
        "celery_queue_length",
    )
    if "celery_queue_length" in out:  # the time of one round trip, not of a failure
        out["fleet_broker_latency_seconds"] = {(): time.perf_counter() - started}
    take("waiting messages", lambda: oldest_ages(redis_client, now, queues), "fleet_queue_oldest_age_seconds")
    take("hosts", lambda: _hosts(redis_client, 3 * config.evaluate_every_s), "fleet_memory_used_percent")
    take("database", lambda: {(): db.check() / 1000.0}, "fleet_database_latency_seconds")
    window = datetime.fromtimestamp(now, UTC)
    take(
        "dead letters",
        lambda: _counts_since(DeadLetter, "queue", window - timedelta(seconds=config.rule("dead_letters").window_s)),
        "fleet_dead_letters_recent",
    )
    anomaly_since = window - timedelta(seconds=config.rule("ledger_anomaly").window_s)
    take("ledger anomalies", lambda: _counts_since(LedgerAlert, "kind", anomaly_since), "fleet_ledger_anomalies_recent")
    if config.rule("report_missing").enabled:
        take("report", lambda: {(): _report_missing()}, "fleet_report_missing")
    try:
        wanted = BUILT_IN_EXPORTED | {rule.metric for rule in config.custom}
        for name, series in exported(_prometheus_text, wanted).items():
            out.setdefault(name, series)
    except (OSError, ValueError) as exc:
        log.warning("alerts: exported metrics unavailable: %s", exc, extra={"category": "system"})
    return out

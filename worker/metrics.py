"""Prometheus metrics of the fleet, multiprocess-safe; `render_latest()` serves `/metrics`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from beat.aggregates import BUCKETS
from worker.constants import QUEUES
from worker.fleet_status import queue_depths, workers_online
from worker.prometheus_env import ensure_multiproc_dir
from worker.redis_client import get_redis

# prometheus_client writes a metric made below straight to PROMETHEUS_MULTIPROC_DIR when that is set already
# (a child of `agent up`, a pod's env): the folder must exist before the first one is made.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

log = logging.getLogger("fleet.reports")

_TASK = ["name", "queue"]

# Named like danihodovic/celery-exporter's, so its dashboards and alerts apply.
TASK_SUCCEEDED = Counter("celery_task_succeeded", "Tasks that succeeded.", _TASK)
TASK_FAILED = Counter("celery_task_failed", "Tasks that raised.", _TASK)
TASK_RETRIED = Counter("celery_task_retried", "Tasks that asked to be retried.", _TASK)
TASK_RUNTIME = Histogram("celery_task_runtime_seconds", "Task run time.", _TASK, buckets=BUCKETS)
TASK_QUEUE_WAIT = Histogram(
    "celery_task_queue_wait_seconds", "Time from publish to start.", _TASK, buckets=(*BUCKETS, 900.0, 3600.0)
)
HTTP_DURATION = Histogram(
    "fleet_http_request_duration_seconds", "API request latency.", ["method", "route", "status"], buckets=BUCKETS
)
API_AUTH_FAILURES = Counter(
    "fleet_api_auth_failures", "API requests refused for their credentials, by reason.", ["reason"]
)
# Messages given back to their queue by the fleet's transport: worker_lost, shutdown, reconnected, requeued,
# visibility_timeout, operator (docs/RELIABILITY.md).
MESSAGES_RESTORED = Counter(
    "fleet_messages_restored", "Messages given back to their queue, by queue and reason.", ["queue", "reason"]
)
for _queue in QUEUES:  # exported at zero from the start: an alert on its rate needs the series to exist
    MESSAGES_RESTORED.labels(queue=_queue, reason="worker_lost")
DB_DURATION = Histogram("fleet_db_query_duration_seconds", "SQL statement latency.", ["verb"], buckets=BUCKETS)

# Agent workflow metrics, for the agents adapters (worker/agents/tasks.py).
AGENT_REQUESTS = Counter("agent_requests", "Workflow requests by mode and final status.", ["mode", "status"])
AGENT_TOOL_CALLS = Counter("agent_tool_calls", "Tool calls by tool and outcome.", ["tool", "status"])
AGENT_STAGE_DURATION = Histogram(
    "agent_stage_duration_seconds", "Duration of one agent stage.", ["stage"], buckets=BUCKETS
)
AGENT_TOKENS = Counter("agent_tokens_used", "Tokens used by stage and kind (prompt, completion).", ["stage", "kind"])

# Ledger quick-run metrics, for the ledger runtime (worker/ledger/service.py).
LEDGER_EVENTS = Counter("ledger_events", "Ledger events processed, by status and deciding code.", ["status", "code"])
LEDGER_QUICK_RUN_SECONDS = Histogram(
    "ledger_quick_run_duration_seconds",
    "Time to process one ledger task.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def use_shared_folder() -> Path:
    """Write this process's fleet metrics to the folder every fleet process shares (create_app does, first).

    A labelled metric makes its values at its first `labels()`, after this; one without labels made them when
    this module was imported, in memory: they are made again, in the folder (nothing was observed yet).
    """
    path = ensure_multiproc_dir()
    for metric in list(globals().values()):
        if isinstance(metric, MetricWrapperBase) and not metric._labelnames:
            metric._metric_init()
    return path


def multiprocess_mode() -> bool:
    """True when metrics are written to the shared folder (every fleet process)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges from the shared folder."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)


class LiveCollector(Collector):
    """Scrape-time gauges read from the broker: queue lengths and workers answering a ping."""

    def __init__(self, app: Any, ping_timeout: float = 0.5) -> None:
        self.app = app
        self.ping_timeout = ping_timeout

    def collect(self) -> Iterator[Any]:
        """Queue length per queue (all priority sub-queues) and one `celery_worker_up` per worker."""
        lengths = GaugeMetricFamily("celery_queue_length", "Messages waiting, every priority.", labels=["queue"])
        up = GaugeMetricFamily("celery_worker_up", "1 for each worker answering a ping.", labels=["hostname"])
        try:
            for queue, depth in queue_depths(get_redis()).items():
                lengths.add_metric([queue], depth)
        except RedisError as exc:
            log.warning("queue lengths unavailable: %s", exc, extra={"category": "performance"})
        try:
            for hostname in workers_online(self.app, timeout=self.ping_timeout):
                up.add_metric([hostname], 1)
        except (OSError, KombuOperationalError) as exc:
            log.warning("workers ping unavailable: %s", exc, extra={"category": "performance"})
        yield lengths
        yield up
        yield _breakers()
        yield from _key_usage()


def _breakers() -> GaugeMetricFamily:
    """Each model endpoint's circuit breaker: 0 closed, 1 half-open, 2 open (shared by every process, in Redis)."""
    from redis.exceptions import RedisError

    from agents.breaker import STATUS_VALUE
    from worker.agents.breakers import statuses
    from worker.agents.ports import agents_config

    gauge = GaugeMetricFamily(
        "agent_provider_breaker_state",
        "Model endpoint circuit breaker: 0 closed, 1 half-open, 2 open.",
        labels=["endpoint"],
    )
    try:
        for name, status in statuses(agents_config().breaker).items():
            gauge.add_metric([name], STATUS_VALUE[status])
    except RedisError as exc:
        log.warning("breaker states unavailable: %s", exc, extra={"category": "performance"})
    return gauge


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


def render_latest(app: Any = None) -> tuple[bytes, str]:
    """The text exposition of every fleet process's metrics and, given the Celery app, the broker gauges."""
    registry = CollectorRegistry()
    # The scrape reads the shared folder, whichever process serves it.
    ensure_multiproc_dir()
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Delegate(REGISTRY))
    if app is not None:
        registry.register(LiveCollector(app))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _key_usage() -> Iterator[GaugeMetricFamily]:
    """Each API key's model tokens and cost today (UTC), summed from the stored stages at scrape time."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.agents.usage import spent_today
    from worker.errors import FleetError

    tokens = GaugeMetricFamily("agent_key_tokens_today", "Model tokens spent today (UTC) by API key.", labels=["key"])
    cost = GaugeMetricFamily("agent_key_cost_today", "Model cost spent today (UTC) by API key.", labels=["key"])
    try:
        for key, used in spent_today().items():
            tokens.add_metric([key], used.total_tokens)
            cost.add_metric([key], used.cost)
    except (SQLAlchemyError, FleetError) as exc:
        log.warning("key usage unavailable: %s", exc, extra={"category": "performance"})
    yield tokens
    yield cost

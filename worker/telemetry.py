"""Per-minute aggregates of tasks, HTTP requests and SQL statements, kept in memory, flushed to Redis.

Each process adds to an in-memory table keyed by (minute, kind, name, group); a daemon thread flushes
it every few seconds (or every N operations) as HINCRBY/HINCRBYFLOAT on one Redis hash per minute, in
one pipeline round trip. `reports.collect_metrics` moves the hashes into SQL (`worker/reports/store.py`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from celery import signals
from redis.exceptions import RedisError
from sqlalchemy import Engine, event

from beat.aggregates import BUCKETS, STATS, MinuteAggregate, bucket_index
from beat.config import ReportsConfig, reports_config
from worker import metrics
from worker.constants import REDIS_KEY_PREFIX
from worker.redis_client import get_redis
from worker.settings import get_settings

log = logging.getLogger("fleet.reports")

# Header stamped by the producer at publish time (epoch seconds): queue wait = start - sent.
SENT_HEADER = "x_sent_at"
KEY_PREFIX = REDIS_KEY_PREFIX + "telemetry:"
MINUTES_KEY = KEY_PREFIX + "minutes"
SEP = "\x1f"
# A minute's hash outlives a fleet that is down for a weekend; collect_metrics deletes it when moved.
KEY_TTL_S = 7 * 24 * 3600
_SLOTS = len(STATS) + len(BUCKETS) + 1
_MAX_SLOTS = frozenset({STATS.index("runtime_max"), STATS.index("wait_max")})


def minute_of(epoch: float) -> int:
    """The epoch second at the start of the minute."""
    return int(epoch // 60) * 60


class Recorder:
    """The in-memory table of one process and the thread that flushes it."""

    def __init__(self, config: Callable[[], ReportsConfig], redis_factory: Callable[[], Any]) -> None:
        self._config_factory = config
        self._config: ReportsConfig | None = None
        self.redis_factory = redis_factory
        self._lock = threading.Lock()
        self._table: dict[tuple[int, str, str, str], list[float]] = {}
        self._pending = 0
        self._flushes = 0
        self._pid = 0
        self._stop = threading.Event()

    @property
    def config(self) -> ReportsConfig:
        """The `reports` section, read at first use (settings are final by then)."""
        if self._config is None:
            self._config = self._config_factory()
        return self._config

    @property
    def enabled(self) -> bool:
        """False when `reports.telemetry` is off: every handler returns at once."""
        return self.config.telemetry

    def record(
        self,
        kind: str,
        name: str,
        group: str,
        runtime: float,
        failed: bool = False,
        retried: bool = False,
        wait: float | None = None,
        at: float | None = None,
    ) -> None:
        """Add one operation to its minute; flushes when the batch is large."""
        key = (minute_of(at if at is not None else time.time()), kind, name, group)
        with self._lock:
            row = self._table.get(key)
            if row is None:
                row = self._table[key] = [0.0] * _SLOTS
            row[0] += 1
            row[1] += failed
            row[2] += retried
            row[3] += runtime
            row[4] = max(row[4], runtime)
            if wait is not None:
                row[5] += wait
                row[6] += 1
                row[7] = max(row[7], wait)
            row[len(STATS) + bucket_index(runtime)] += 1
            self._pending += 1
            full = self._pending >= self.config.flush_every_tasks
        if self._pid != os.getpid():
            self._start_thread()
        if full:
            self.flush()

    def _start_thread(self) -> None:
        # Threads do not survive fork: each pool process starts its own on its first operation.
        self._pid = os.getpid()
        self._stop = threading.Event()
        thread = threading.Thread(target=self._run, name="fleet-telemetry", daemon=True)
        thread.start()
        # Short-lived processes (the CLI, a test) write what they measured before they exit.
        atexit.register(self.stop, quiet=True)

    def _run(self) -> None:
        # Between periodic flushes, a request on FLUSH_CHANNEL (`agent report`) flushes at once and answers.
        listener = self._listen()
        while not self._stop.is_set():
            reply = self._wait_for_request(listener)
            self.flush()
            if reply:
                with contextlib.suppress(RedisError, OSError):
                    client = self.redis_factory()
                    client.rpush(reply, os.getpid())
                    client.expire(reply, 60)

    def _listen(self) -> Any:
        try:
            listener = self.redis_factory().pubsub(ignore_subscribe_messages=True)
            listener.subscribe(FLUSH_CHANNEL)
            return listener
        except (RedisError, OSError):
            return None

    def _wait_for_request(self, listener: Any) -> str | None:
        if listener is None:
            self._stop.wait(self.config.flush_interval_s)
            return None
        try:
            message = listener.get_message(timeout=self.config.flush_interval_s)
        except (RedisError, OSError, ValueError):
            self._stop.wait(self.config.flush_interval_s)  # the broker is away: flush on the clock alone
            return None
        data = message.get("data") if message else None
        return data.decode() if isinstance(data, bytes) else data

    def take(self) -> dict[tuple[int, str, str, str], list[float]]:
        """Swap out the table: what the next flush writes."""
        with self._lock:
            table, self._table, self._pending = self._table, {}, 0
        return table

    def flush(self, quiet: bool = False) -> int:
        """Write the table to Redis in one pipeline; on failure keep it for the next flush."""
        table = self.take()
        if not table:
            return 0
        self._flushes += 1
        token = f"{os.getpid()}.{self._flushes}"
        try:
            pipe = self.redis_factory().pipeline(transaction=False)
            for (minute, kind, name, group), row in table.items():
                key = f"{KEY_PREFIX}{minute}"
                prefix = SEP.join((kind, name, group))
                for index, value in enumerate(row):
                    if index in _MAX_SLOTS and value:
                        # A maximum cannot be added up: each flush sets its own field, read back as max.
                        pipe.hset(key, f"{prefix}{SEP}{index}{SEP}{token}", value)
                    elif value:
                        pipe.hincrbyfloat(key, f"{prefix}{SEP}{index}", value)
                pipe.expire(key, KEY_TTL_S)
                pipe.sadd(MINUTES_KEY, minute)
            pipe.execute()
        except (RedisError, OSError) as exc:
            self._restore(table)
            (log.debug if quiet else log.warning)(
                "telemetry flush failed, kept for the next one: %s", exc, extra={"category": "performance"}
            )
            return 0
        return len(table)

    def _restore(self, table: dict[tuple[int, str, str, str], list[float]]) -> None:
        # A max written back as a sum would be wrong, but a failed flush is rare and the next one merges.
        with self._lock:
            for key, row in table.items():
                mine = self._table.setdefault(key, [0.0] * _SLOTS)
                for index, value in enumerate(row):
                    mine[index] = max(mine[index], value) if index in _MAX_SLOTS else mine[index] + value

    def stop(self, quiet: bool = False) -> None:
        """Stop the thread and write what is left (`quiet`: at exit, when the broker may be gone already)."""
        self._stop.set()
        self.flush(quiet=quiet)


FLUSH_CHANNEL = KEY_PREFIX + "flush"


def request_flush(redis_client: Any, timeout_s: float = 2.0) -> tuple[int, int]:
    """Ask every running process to write its table now; (processes asked, processes that answered in time)."""
    reply = f"{KEY_PREFIX}flushed:{os.getpid()}:{time.monotonic_ns()}"
    asked = int(redis_client.publish(FLUSH_CHANNEL, reply))
    answered, deadline = 0, time.monotonic() + timeout_s
    while answered < asked and (left := deadline - time.monotonic()) > 0:
        if redis_client.blpop([reply], timeout=max(left, 0.01)) is None:
            break
        answered += 1
    redis_client.delete(reply)
    return asked, answered


_muted = threading.local()


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """This thread's SQL is not the fleet's: the report reading its own figures stays out of them."""
    _muted.on = True
    try:
        yield
    finally:
        _muted.on = False


def parse_hash(minute: int, fields: dict[str, str]) -> list[MinuteAggregate]:
    """The aggregates stored in one minute's Redis hash."""
    rows: dict[tuple[str, str, str], MinuteAggregate] = {}
    at = datetime.fromtimestamp(minute, UTC)
    for field, raw in fields.items():
        kind, name, group, slot, *_flush = field.split(SEP)
        row = rows.get((kind, name, group))
        if row is None:
            row = rows[(kind, name, group)] = MinuteAggregate(minute=at, kind=kind, name=name, group=group)
        index, value = int(slot), float(raw)
        if index in _MAX_SLOTS:
            stat = STATS[index]
            setattr(row, stat, max(getattr(row, stat), value))
        elif index < len(STATS):
            stat = STATS[index]
            setattr(row, stat, round(value) if stat in ("count", "failures", "retries", "wait_count") else value)
        else:
            row.buckets[index - len(STATS)] = round(value)
    return list(rows.values())


def _config() -> ReportsConfig:
    return reports_config(get_settings().section("reports"))


def _redis() -> Any:
    return get_redis()


RECORDER = Recorder(_config, _redis)
_started: dict[str, tuple[float, float | None]] = {}


def _queue_wait(request: Any, now: float) -> float | None:
    sent = getattr(request, SENT_HEADER, None)
    if not isinstance(sent, int | float):
        return None
    eta = getattr(request, "eta", None)
    if eta:
        with contextlib.suppress(ValueError):
            sent = max(sent, datetime.fromisoformat(str(eta)).timestamp())
    return max(0.0, now - sent)


def _stamp_sent(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if RECORDER.enabled and headers is not None and SENT_HEADER not in headers:
        headers[SENT_HEADER] = time.time()


def _task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is not None and task is not None and RECORDER.enabled:
        _started[task_id] = (time.perf_counter(), _queue_wait(task.request, time.time()))


# The task metrics' labelled children per (task name, queue): prometheus_client's labels() validates the
# values and looks the child up under a lock on every call, a third of the handlers' time per task.
_children: dict[tuple[str, str], tuple[Any, Any, Any, Any, Any]] = {}


def _task_metrics(name: str, queue: str) -> tuple[Any, Any, Any, Any, Any]:
    """Succeeded, failed and retried counters, runtime and queue-wait histograms of one task and queue."""
    found = _children.get((name, queue))
    if found is None:
        found = _children[(name, queue)] = (
            metrics.TASK_SUCCEEDED.labels(name, queue),
            metrics.TASK_FAILED.labels(name, queue),
            metrics.TASK_RETRIED.labels(name, queue),
            metrics.TASK_RUNTIME.labels(name, queue),
            metrics.TASK_QUEUE_WAIT.labels(name, queue),
        )
    return found


def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    began = _started.pop(task_id or "", None)
    if began is None or task is None:
        return
    runtime = time.perf_counter() - began[0]
    name, queue = task.name, (task.request.delivery_info or {}).get("routing_key") or ""
    failed, retried = state == "FAILURE", state == "RETRY"
    RECORDER.record("task", name, queue, runtime, failed=failed, retried=retried, wait=began[1])
    succeeded_total, failed_total, retried_total, runtimes, waits = _task_metrics(name, queue)
    (failed_total if failed else retried_total if retried else succeeded_total).inc()
    runtimes.observe(runtime)
    if began[1] is not None:
        waits.observe(began[1])


def _process_exit(**_: Any) -> None:
    if RECORDER.enabled:
        RECORDER.stop()
        metrics.process_exited(os.getpid())


def _before_sql(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    if RECORDER.enabled and not getattr(_muted, "on", False):
        conn.info.setdefault("fleet_query_start", []).append(time.perf_counter())


def _after_sql(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    starts = conn.info.get("fleet_query_start")
    if not starts:
        return
    elapsed = time.perf_counter() - starts.pop()
    verb = (statement.lstrip().split(None, 1) or ["?"])[0].upper()[:16]
    RECORDER.record("db", verb, "db", elapsed)
    metrics.DB_DURATION.labels(verb).observe(elapsed)


async def http_latency_middleware(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Starlette/FastAPI `@app.middleware("http")` function: latency per route template and status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        RECORDER.record("http", f"{request.method} {route}", "api", elapsed, failed=status >= 500)
        metrics.HTTP_DURATION.labels(request.method, route, str(status)).observe(elapsed)


def install() -> None:
    """Connect the signal handlers and SQL events; each returns at once when `reports.telemetry` is off."""
    signals.before_task_publish.connect(_stamp_sent, weak=False)
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_finished, weak=False)
    signals.worker_process_shutdown.connect(_process_exit, weak=False)
    signals.worker_shutdown.connect(_process_exit, weak=False)
    if not event.contains(Engine, "before_cursor_execute", _before_sql):
        event.listen(Engine, "before_cursor_execute", _before_sql)
        event.listen(Engine, "after_cursor_execute", _after_sql)

"""Evidence gathered by the adapters: psutil host samples, JSON log lines, component probes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis.exceptions import RedisError

from beat.aggregates import HostSample, LogEvent
from beat.components import Probe
from worker.constants import REDIS_KEY_PREFIX
from worker.db import check
from worker.errors import DatabaseUnavailable
from worker.fleet_status import queue_depths, registered_services, workers_online

log = logging.getLogger("fleet.reports")

HOST_STATE_KEY = REDIS_KEY_PREFIX + "reports:host-state"
LOG_OFFSETS_KEY = REDIS_KEY_PREFIX + "reports:log-offsets"
_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
# Processes counted as the fleet's own: Celery workers and beat, the agent CLI and API, Flower.
_FLEET_WORDS = ("celery", "agent", "uvicorn", "flower")


def _fleet_processes() -> Iterator[psutil.Process]:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if any(word in cmdline for word in _FLEET_WORDS):
            yield proc


def _counters() -> dict[str, float]:
    fleet_cpu = rss = 0.0
    for proc in _fleet_processes():
        try:
            times = proc.cpu_times()
            fleet_cpu += times.user + times.system
            rss += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    net = psutil.net_io_counters()
    disk = psutil.disk_io_counters()
    return {
        "at": time.time(),
        "fleet_cpu_s": fleet_cpu,
        "fleet_rss_mb": rss / 1e6,
        "net_bytes": float(net.bytes_sent + net.bytes_recv) if net else 0.0,
        "disk_bytes": float(disk.read_bytes + disk.write_bytes) if disk else 0.0,
    }


def sample_host(redis_client: Any, log_dir: Path, app: Any, minute: datetime) -> HostSample:
    """One minute's host sample; rates come from the counters the previous sample left in Redis."""
    now = _counters()
    previous = json.loads(redis_client.get(HOST_STATE_KEY) or "null")
    redis_client.set(HOST_STATE_KEY, json.dumps(now))
    elapsed = now["at"] - previous["at"] if previous else 0.0

    def rate(key: str) -> float:
        return max(0.0, now[key] - previous[key]) / elapsed if previous and elapsed > 0 else 0.0

    errors, warnings = count_new_log_lines(redis_client, log_dir)
    try:
        depths = queue_depths(redis_client)
    except RedisError:
        depths = {}
    return HostSample(
        minute=minute,
        cpu_percent=psutil.cpu_percent(interval=0.2),
        fleet_cpu_percent=100.0 * rate("fleet_cpu_s"),
        memory_percent=psutil.virtual_memory().percent,
        fleet_rss_mb=now["fleet_rss_mb"],
        net_kbps=rate("net_bytes") / 1000,
        disk_kbps=rate("disk_bytes") / 1000,
        error_lines=errors,
        warning_lines=warnings,
        queue_depth=depths,
        workers=len(workers_online(app, timeout=1.0)),
    )


def _log_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.glob("*.jsonl") if p.is_file())


def _records(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def count_new_log_lines(redis_client: Any, log_dir: Path) -> tuple[int, int]:
    """Error and warning lines written to the JSON logs since the previous call (offsets kept in Redis)."""
    errors = warnings = 0
    for path in _log_files(log_dir):
        size = path.stat().st_size
        offset = int(redis_client.hget(LOG_OFFSETS_KEY, str(path)) or 0)
        if size < offset:  # rotated
            offset = 0
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        complete = chunk[: chunk.rfind(b"\n") + 1]
        redis_client.hset(LOG_OFFSETS_KEY, str(path), offset + len(complete))
        for record in _records(complete.decode("utf-8", errors="replace")):
            level = str(record.get("level", "")).upper()
            errors += level in ("ERROR", "CRITICAL")
            warnings += level == "WARNING"
    return errors, warnings


def read_log_events(log_dir: Path, start: datetime, end: datetime, limit: int = 10_000) -> list[LogEvent]:
    """Warning and error lines of the period from the JSON logs, newest `limit` kept."""
    events: list[LogEvent] = []
    for path in _log_files(log_dir):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.warning("cannot read log %s: %s", path, exc, extra={"category": "system"})
            continue
        for record in _records(text):
            level = str(record.get("level", "")).upper()
            if level not in _LEVELS:
                continue
            try:
                at = datetime.fromisoformat(str(record.get("ts"))).astimezone(UTC)
            except ValueError:
                continue
            if start <= at < end:
                events.append(LogEvent(at, level, str(record.get("logger", "")), str(record.get("message", ""))))
    events.sort(key=lambda e: e.at)
    return events[-limit:]


def _http_ok(url: str | None) -> bool | None:
    if not url:
        return None
    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def probe(app: Any, redis_client: Any, config: Any, beat_last_seen: datetime | None) -> Probe:
    """Ask every component now: broker and database round trips, workers' ping, Flower and API URLs."""
    broker_ms: float | None = None
    broker_error = database_error = ""
    started = time.perf_counter()
    try:
        redis_client.ping()
        broker_ms = (time.perf_counter() - started) * 1000
    except (RedisError, OSError) as exc:
        broker_error = f"does not answer: {exc}"
    try:
        database_ms: float | None = check()
    except DatabaseUnavailable as exc:
        database_ms, database_error = None, str(exc)
    workers = tuple(workers_online(app, timeout=1.0)) if broker_ms is not None else ()
    # Configured URLs win; else those `agent up` recorded for the services it started.
    recorded = registered_services(redis_client) if broker_ms is not None else {}
    return Probe(
        broker_ms=broker_ms,
        database_ms=database_ms,
        workers=workers,
        expected_workers=config.expected_workers,
        beat_last_seen=beat_last_seen,
        flower_ok=_http_ok(config.flower_url or recorded.get("flower")),
        api_ok=_http_ok(config.api_url or recorded.get("api")),
        broker_error=broker_error,
        database_error=database_error,
    )

"""Health of the fleet as the API reports it: broker, database, a worker on each queue, migrations."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from alembic.script import ScriptDirectory

from worker.application import get_app
from worker.constants import CORRELATION_HEADER, QUEUES
from worker.db import check
from worker.errors import FleetError
from worker.migrate import alembic_config, current
from worker.redis_client import get_redis
from worker.settings import get_settings


@dataclass(frozen=True)
class Component:
    """One component's state: `ok` or `error`, with what was seen."""

    name: str
    status: str
    detail: str = ""
    latency_ms: float | None = None

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        """JSON-ready; without `details`, only the name and the status (what an anonymous caller is told)."""
        return asdict(self) if details else {"name": self.name, "status": self.status}


Answer = tuple[bool, list[Component]]


class SharedProbe:
    """One probe's answer shared by every caller for `ttl_s`: callers arriving while it runs get the last answer
    (or, before the first, wait for it), so any number of callers costs one probe per period."""

    def __init__(self, probe: Callable[[], Answer]) -> None:
        self.probe = probe
        self._running = threading.Lock()
        self._answer: Answer | None = None
        self._at = 0.0

    def get(self, ttl_s: float) -> Answer:
        """The cached answer while fresh, else a new probe's (or the last one while another caller probes)."""
        answer = self._answer
        if answer is not None and time.monotonic() - self._at < ttl_s:
            return answer
        if not self._running.acquire(blocking=answer is None):
            assert answer is not None
            return answer
        try:
            if self._answer is not None and time.monotonic() - self._at < ttl_s:
                return self._answer  # probed by the caller we waited for
            self._answer, self._at = self.probe(), time.monotonic()
            return self._answer
        finally:
            self._running.release()


def _timed(name: str, probe: Any) -> Component:
    started = time.perf_counter()
    try:
        detail = probe() or ""
    except (FleetError, OSError, ConnectionError) as exc:
        return Component(name, "error", str(exc))
    except Exception as exc:  # noqa: BLE001  (a probe's unknown failure is the answer, not a crash)
        return Component(name, "error", f"{type(exc).__name__}: {exc}")
    return Component(name, "ok", str(detail), round((time.perf_counter() - started) * 1000, 2))


def check_broker() -> Component:
    """The broker answers PING."""
    return _timed("broker", lambda: "PONG" if get_redis().ping() else "")


def check_database() -> Component:
    """The database answers SELECT 1."""
    return _timed("database", lambda: "SELECT 1" if check() >= 0 else "")


def ping_queues(timeout_s: float, queues: tuple[str, ...] = QUEUES) -> list[Component]:
    """Send fleet.ping to every queue at priority 0 and wait, bounded, for a worker on each to answer."""
    app = get_app()
    correlation = f"health-{uuid.uuid4()}"
    started = time.perf_counter()
    try:
        # The ping expires with the wait: an unserved queue does not pile up stale pings.
        sent = {
            queue: app.send_task(
                "fleet.ping", queue=queue, priority=0, expires=timeout_s, headers={CORRELATION_HEADER: correlation}
            )
            for queue in queues
        }
    except (OSError, ConnectionError) as exc:
        return [Component(f"queue:{queue}", "error", f"cannot send: {exc}") for queue in queues]
    answers: dict[str, Component] = {}
    deadline = started + timeout_s
    while len(answers) < len(sent) and time.perf_counter() < deadline:
        for queue, result in sent.items():
            if queue not in answers and result.ready():
                elapsed = round((time.perf_counter() - started) * 1000, 2)
                value = result.result if result.successful() else None
                host = value.get("hostname", "") if isinstance(value, dict) else ""
                state = "ok" if result.successful() else "error"
                answers[queue] = Component(
                    f"queue:{queue}", state, f"answered by {host}" if host else str(value), elapsed
                )
        time.sleep(0.02)
    for queue, result in sent.items():
        if queue not in answers:
            result.forget()
            answers[queue] = Component(f"queue:{queue}", "error", f"no worker answered within {timeout_s} s")
    return [answers[queue] for queue in queues]


def readiness(timeout_s: float) -> tuple[bool, list[Component]]:
    """Whether the fleet can take work, and each component's state."""
    broker = check_broker()
    components = [broker, check_database()]
    if broker.status == "ok":
        components += ping_queues(timeout_s)
    else:
        components += [Component(f"queue:{queue}", "error", "broker unavailable") for queue in QUEUES]
    return all(c.status == "ok" for c in components), components


def migrations() -> tuple[bool, Component]:
    """Whether the database is at every head revision."""
    url = get_settings().database_url
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())

    def probe() -> str:
        applied = set(current(url))
        missing = heads - applied
        if missing:
            raise FleetError(f"migrations not applied: {', '.join(sorted(missing))}; run `agent db upgrade`")
        return f"at heads {', '.join(sorted(heads))}"

    component = _timed("migrations", probe)
    return component.status == "ok", component


def ping_queue(queue: str, priority: int, correlation_id: str | None, wait_s: float) -> dict[str, Any]:
    """Send fleet.ping to one queue; the worker's answer when it comes within `wait_s`, else the task id."""
    app = get_app()
    headers = {CORRELATION_HEADER: correlation_id or str(uuid.uuid4())}
    result = app.send_task("fleet.ping", queue=queue, priority=priority, headers=headers, expires=max(wait_s, 60))
    out: dict[str, Any] = {"task_id": result.id, "queue": queue, "priority": priority, **headers}
    deadline = time.perf_counter() + wait_s
    while wait_s > 0 and not result.ready() and time.perf_counter() < deadline:
        time.sleep(0.02)
    out["answer"] = result.result if result.successful() else None
    return out

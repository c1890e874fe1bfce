"""The one Python client: send work to the fleet from another application, or from the fleet's own API and CLI.

Over the broker it needs only `celery` (with redis); the contract (queues, priorities, transport options,
header) comes from `fleet_contract`:

    from gateway.client import make_app, submit_ledger_events, run_workflow
    app = make_app("redis://redis:6379/0")
    results = submit_ledger_events([event], app=app, priority="high", correlation_id="order-42")
    run = run_workflow({"input": "compute (12+30)*2"}, app=app)

`submit` routes each event by the fleet's ledger filter and priority rules instead (what the API does); it
needs the fleet's `ledger` package. Over HTTP (keys, rate limits and idempotency of the API), with `httpx`:

    with FleetHttpClient("http://api:8000", api_key="fleet_...") as fleet:
        fleet.submit_ledger_events([event], wait=True)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.result import AsyncResult

from fleet_contract import (
    BROKER_TRANSPORT_OPTIONS,
    CORRELATION_HEADER,
    DEFAULT_PRIORITY,
    PRIORITY_LEVELS,
    TASK_ROUTES,
    priority_of,
    producer_settings,
)

if TYPE_CHECKING:
    import httpx

    from ledger.config import LedgerConfig

PRIORITIES = PRIORITY_LEVELS
LEDGER_TASK = "ledger.quick_run"
LEDGER_QUEUE = "ledger"


@dataclass
class Sent:
    """One event handed to the broker (or skipped by a filter rule before sending)."""

    event_id: str | None
    priority: int
    skipped: str | None = None
    result: AsyncResult | None = field(default=None, repr=False)


def make_app(broker_url: str, backend_url: str | None = None) -> Celery:
    """A producer-only Celery app that agrees with the fleet on serialisation, routes and priorities."""
    app = Celery("fleet-client", broker=broker_url, backend=backend_url or broker_url)
    app.conf.update(producer_settings())
    return app


# The name older code imports from ledger.client.
producer_app = make_app


def _app(app: Celery | None, broker_url: str | None) -> Celery:
    if app is not None:
        return app
    if broker_url is None:
        raise ValueError("give either app= or broker_url=")
    return make_app(broker_url)


def _send_event(
    app: Celery, producer: Any, event: Mapping[str, Any] | str, label: str | None, level: int, correlation_id: str
) -> AsyncResult:
    """Send one event as `ledger.quick_run`: the one way every client sends one."""
    return app.send_task(
        LEDGER_TASK,
        args=[dict(event) if isinstance(event, Mapping) else event],
        # What Celery logs and shows in Flower instead of the event (which names accounts).
        argsrepr=f"[<ledger event {label}>]" if label else "[<ledger event>]",
        queue=LEDGER_QUEUE,
        priority=level,
        producer=producer,
        headers={CORRELATION_HEADER: correlation_id},
    )


def submit_ledger_events(
    events: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    broker_url: str | None = None,
    app: Celery | None = None,
    priority: int | str = "normal",
    correlation_id: str | None = None,
) -> list[AsyncResult]:
    """Send each event as `ledger.quick_run` at `priority` on the ledger queue; one result per event, in order."""
    celery = _app(app, broker_url)
    batch = [events] if isinstance(events, Mapping) else list(events)
    level = priority_of(priority)
    with celery.producer_or_acquire() as producer:
        # Each event under the caller's correlation id, else its own, else a new one.
        return [
            _send_event(
                celery, producer, event, None, level, correlation_id or event.get("correlation_id") or str(uuid.uuid4())
            )
            for event in batch
        ]


def submit(
    events: Iterable[dict[str, Any] | str],
    app: Celery | None = None,
    *,
    broker_url: str | None = None,
    config: LedgerConfig | None = None,
    correlation_id: str | None = None,
    on_sent: Callable[[Sent], None] | None = None,
) -> list[Sent]:
    """Route each event by the ledger's filter and priority rules (skip it, or pick its priority) and send it
    as `ledger.quick_run`; what the API and `agent ledger submit` do."""
    # The rules are the fleet's ledger package (pydantic, orjson): a producer sending at a priority of its own
    # (submit_ledger_events) does without them.
    from ledger.body import decode
    from ledger.config import LedgerConfig
    from ledger.events import LedgerEvent, build
    from ledger.filters import route

    celery = _app(app, broker_url)
    config = config or LedgerConfig()
    default = correlation_id or str(uuid.uuid4())
    sent: list[Sent] = []
    with celery.producer_or_acquire() as producer:
        for event in events:
            decoded = decode(event, config.payload_limit_bytes)
            parsed = build(decoded, config)
            # The id the worker's result will carry, also for an event it is going to reject.
            decision = route(parsed, config) if isinstance(parsed, LedgerEvent) else None
            if decision is not None and decision.skipped:
                item = Sent(decoded.event_id, decision.priority, decision.reason)
            else:
                level = decision.priority if decision else DEFAULT_PRIORITY
                # An id that failed validation may hold anything: it stays out of logs and Flower.
                label = parsed.event_id if isinstance(parsed, LedgerEvent) else "unparsed"
                result = _send_event(celery, producer, event, label, level, default)
                item = Sent(decoded.event_id, level, None, result)
            sent.append(item)
            if on_sent is not None:
                on_sent(item)
    return sent


def run_workflow(
    request: Mapping[str, Any],
    broker_url: str | None = None,
    app: Celery | None = None,
    priority: int | str = "normal",
    correlation_id: str | None = None,
) -> AsyncResult:
    """Send a workflow request as `agents.run_workflow` on the agents queue."""
    celery = _app(app, broker_url)
    headers = {CORRELATION_HEADER: correlation_id or str(uuid.uuid4())}
    return celery.send_task(
        "agents.run_workflow", args=[dict(request)], queue="agents", priority=priority_of(priority), headers=headers
    )


def ping(queue: str, broker_url: str | None = None, app: Celery | None = None, priority: int = 0) -> AsyncResult:
    """Send `fleet.ping` to a queue: its answer names the worker serving it."""
    celery = _app(app, broker_url)
    headers = {CORRELATION_HEADER: str(uuid.uuid4())}
    return celery.send_task("fleet.ping", queue=queue, priority=priority, headers=headers)


class FleetHttpClient:
    """The same operations over the HTTP API, with an API key."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        # httpx is needed for HTTP only: a producer over the broker installs celery alone.
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http: httpx.Client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> FleetHttpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def submit_ledger_events(
        self, events: Sequence[Mapping[str, Any]], wait: bool = False, idempotency_key: str | None = None
    ) -> Any:
        """POST /api/v1/ledger/events (each event's priority comes from the fleet's rules)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {"events": [dict(e) for e in events]}
        return self._call("POST", "/api/v1/ledger/events", params={"wait": wait}, json=body, headers=headers)

    def ledger_result(self, event_id: str) -> Any:
        """GET /api/v1/ledger/results/{event_id}."""
        return self._call("GET", f"/api/v1/ledger/results/{event_id}")

    def run_workflow(self, request: Mapping[str, Any], wait: bool = False, idempotency_key: str | None = None) -> Any:
        """POST /api/v1/agent/run (with `wait`, the finished run record when it ends within the API's timeout)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/api/v1/agent/run", params={"wait": wait}, json=dict(request), headers=headers)

    def run_status(self, run_id: str) -> Any:
        """GET /api/v1/agent/status/{run_id}."""
        return self._call("GET", f"/api/v1/agent/status/{run_id}")

    def ping(self, queue: str, priority: int = 0) -> Any:
        """POST /api/v1/ping: the worker that answered on the queue."""
        return self._call("POST", "/api/v1/ping", json={"queue": queue, "priority": priority})


__all__ = [
    "BROKER_TRANSPORT_OPTIONS",
    "CORRELATION_HEADER",
    "LEDGER_QUEUE",
    "LEDGER_TASK",
    "PRIORITIES",
    "TASK_ROUTES",
    "FleetHttpClient",
    "Sent",
    "make_app",
    "ping",
    "priority_of",
    "producer_app",
    "run_workflow",
    "submit",
    "submit_ledger_events",
]

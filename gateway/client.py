"""Send work to the fleet from another application: needs only `celery` (with redis) and `httpx`.

Over the broker (task names of the public contract, the fleet's transport options):

    from gateway.client import make_app, submit_ledger_events, run_workflow
    app = make_app("redis://redis:6379/0")
    results = submit_ledger_events([event], app=app, priority="high", correlation_id="order-42")
    run = run_workflow({"input": "compute (12+30)*2"}, app=app)

Over HTTP (keys, rate limits and idempotency of the API):

    with FleetHttpClient("http://api:8000", api_key="fleet_...") as fleet:
        fleet.submit_ledger_events([event], wait=True)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from celery import Celery
from celery.result import AsyncResult

# Copy of the fleet's contract (this module must not import `worker`): keep in step with worker/constants.py.
PRIORITIES: dict[str, int] = {"critical": 0, "high": 3, "normal": 5, "low": 8}
CORRELATION_HEADER = "x_correlation_id"
BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "queue_order_strategy": "priority",
    "priority_steps": list(range(10)),
    "sep": ":",
}
TASK_ROUTES = {"ledger.*": {"queue": "ledger"}, "agents.*": {"queue": "agents"}, "reports.*": {"queue": "reports"}}


def priority_of(priority: int | str) -> int:
    """A priority level by name (critical, high, normal, low) or number 0-9, 0 most urgent."""
    value = PRIORITIES[priority] if isinstance(priority, str) else priority
    if not 0 <= value <= 9:
        raise ValueError(f"priority must be 0-9 or one of {', '.join(PRIORITIES)}, got {priority!r}")
    return value


def make_app(broker_url: str, backend_url: str | None = None) -> Celery:
    """A producer-only Celery app that agrees with the fleet on serialisation, routes and priorities."""
    app = Celery("fleet-client", broker=broker_url, backend=backend_url or broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        broker_transport_options=BROKER_TRANSPORT_OPTIONS,
        task_routes=TASK_ROUTES,
    )
    return app


def _app(app: Celery | None, broker_url: str | None) -> Celery:
    if app is not None:
        return app
    if broker_url is None:
        raise ValueError("give either app= or broker_url=")
    return make_app(broker_url)


def submit_ledger_events(
    events: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    broker_url: str | None = None,
    app: Celery | None = None,
    priority: int | str = "normal",
    correlation_id: str | None = None,
) -> list[AsyncResult]:
    """Send each event as `ledger.quick_run` on the ledger queue; one result per event, in order."""
    celery = _app(app, broker_url)
    batch = [events] if isinstance(events, Mapping) else list(events)
    level = priority_of(priority)
    results = []
    for event in batch:
        headers = {CORRELATION_HEADER: correlation_id or event.get("correlation_id") or str(uuid.uuid4())}
        results.append(
            celery.send_task("ledger.quick_run", args=[dict(event)], queue="ledger", priority=level, headers=headers)
        )
    return results


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
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

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

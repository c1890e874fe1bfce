"""The API's OpenAPI document: valid, a response shape on every route, the errors each route can answer, and
response models that leave the JSON users see byte for byte as it was."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import fastapi.routing
import pytest
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, serialize_response
from openapi_spec_validator import validate
from pydantic import BaseModel, TypeAdapter

from agents.models import RunRecord, StageOutput, SubtaskResult, Usage, WorkflowRequest
from agents.tools import default_registry
from beat.analyzer import load_catalogue
from beat.components import Probe
from beat.report import build_briefing
from gateway import api
from gateway.problems import PROBLEM_TYPE
from gateway.responses import Accepted, Health, LegacyHealth, PendingRun, Report
from gateway.services.health import Component
from gateway.services.ledger import outcomes
from ledger.config import LedgerConfig
from ledger.quickrun import MemoryStore, run
from ledger.versions import VersionStats, compare
from tests.ledger_cases import cases, setup
from tests.unit.test_report_logic import _inputs
from worker.settings import get_settings

APP = api.create_app()
DOCUMENT = APP.openapi()


def _routes() -> list[Any]:
    """Every route in the document, its prefix and its router's `responses` applied (FastAPI >= 0.135 includes
    a router lazily: `app.routes` holds the router, iter_route_contexts its routes)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    found = list(contexts(APP.routes)) if contexts else list(APP.routes)
    return [r for r in found if isinstance(getattr(r, "original_route", r), APIRoute) and r.include_in_schema]


ROUTES = _routes()
# Routes whose success answer is no JSON: the schema documents the text (events, metrics, a page).
TEXT_MEDIA = {"text/event-stream", "text/plain", "text/html"}


def operations() -> list[tuple[Any, str, dict[str, Any]]]:
    """Each route with each of its methods and its operation in the OpenAPI document."""
    return [
        (route, method, DOCUMENT["paths"][route.path_format][method.lower()])
        for route in ROUTES
        for method in sorted(route.methods)
    ]


def label(item: tuple[Any, str, dict[str, Any]]) -> str:
    return f"{item[1]} {item[0].path}"


def needs_a_key(route: Any) -> bool:
    """Whether a route depends on an API key's scope (gateway.deps.require)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if getattr(dependency.call, "__name__", "").startswith("require_"):
            return True
        stack += dependency.dependencies
    return False


def test_the_openapi_document_is_valid_openapi() -> None:
    # Given the document the API serves at /openapi.json
    # Then it validates against the OpenAPI specification it declares
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.")


@pytest.mark.parametrize("item", operations(), ids=label)
def test_every_route_documents_the_shape_of_its_success(item: tuple[Any, str, dict[str, Any]]) -> None:
    route, _method, operation = item
    success = {status: answer for status, answer in operation["responses"].items() if status.startswith("2")}
    assert success, "no success answer documented"
    for status, answer in success.items():
        content = answer.get("content", {})
        assert content, f"{status} documents no content"
        for media, body in content.items():
            assert body.get("schema"), f"{status} {media} has no schema"
    media = {media for answer in success.values() for media in answer["content"]}
    if media - TEXT_MEDIA:
        # A JSON answer comes from a pydantic model, never a bare dict
        assert route.response_model is not None
        assert "application/json" in media


@pytest.mark.parametrize("item", operations(), ids=label)
def test_every_route_documents_the_errors_it_can_answer(item: tuple[Any, str, dict[str, Any]]) -> None:
    route, method, operation = item
    responses = operation["responses"]
    # A route behind a key can refuse the key (401) and the scope (403); an open route documents neither
    for status in ("401", "403"):
        assert (status in responses) == needs_a_key(route), status
    # It also counts against the key's rate limit (429), kept in Redis (503 while Redis does not answer)
    if needs_a_key(route):
        assert {"429", "503"} <= set(responses)
    # A route with parameters or a body can find them invalid (422, problem+json with each field)
    validated = bool(get_flat_params(route.dependant) or route.body_field)
    assert ("422" in responses) == validated
    if validated:
        schema = responses["422"]["content"][PROBLEM_TYPE]["schema"]
        assert schema["$ref"].endswith("/ValidationProblem")
    # A POST can meet the Idempotency-Key still in progress (409)
    if method == "POST":
        assert "409" in responses
    # Every error is documented as what it is sent as: application/problem+json
    for status, answer in responses.items():
        if status.startswith(("4", "5")) and answer.get("content", {}).get(PROBLEM_TYPE) is None:
            assert route.path_format in {"/health/ready", "/health/startup", "/api/health"} and status == "503"


def test_fastapis_own_validation_error_shape_is_not_documented() -> None:
    # The API answers 422 as problem+json: FastAPI's default shape would describe an answer nobody gets
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


# What each route's service returns, in the services' own words; the route's model must not change its bytes.
T = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)


def _run_record() -> dict[str, Any]:
    stages = (
        StageOutput(stage="analyze", status="succeeded", output={"intent": "compute", "n": 1}, started_at=T,
                    ended_at=T + timedelta(seconds=1), duration_ms=1000.5, usage=Usage(prompt_tokens=3), task_id="t1"),
        StageOutput(stage="execute", status="running", started_at=T),
    )  # fmt: skip
    subtasks = (
        SubtaskResult(subtask_id="s1", tool="calculator", version="v1", args={"expression": "1+1"}, status="succeeded",
                      output={"value": 2}, duration_ms=2),
    )  # fmt: skip
    record = RunRecord(
        run_id="r-1",
        status="executing",
        request=WorkflowRequest(input="compute 1+1 ✓", options={"x": 1.5}, scopes=("run",)),
        owner="abcd1234",
        stages=stages,
        subtasks=subtasks,
        timeline={"created": T},
        created_at=T,
        updated_at=T + timedelta(seconds=2),
    )
    return record.model_dump(mode="json")


def _ledger_results() -> list[dict[str, Any]]:
    store = MemoryStore()
    now = datetime.now(UTC)
    results = run(setup("p"), store, LedgerConfig(), now)
    results += run(list(cases("p").values()), store, LedgerConfig(), now)
    results.append({"event_id": "p-skip", "status": "skipped", "codes": [], "reason": "filtered: test events"})
    assert {"accepted", "rejected", "duplicate", "skipped"} <= {r["status"] for r in results}
    return results


def _submitted() -> list[dict[str, Any]]:
    results = _ledger_results()
    queued = [{"event_id": r["event_id"], "priority": 5, "skipped": None, "task_id": "t"} for r in results]
    return [{"queued": queued}, {"queued": queued, "results": None}, {"queued": queued, "results": results,
            **outcomes(results)}]  # fmt: skip


def _briefing() -> dict[str, Any]:
    markdown, data = build_briefing(_inputs("en", Probe(broker_ms=0.5, database_ms=1.0, workers=())), load_catalogue())
    assert data["issues"], "a briefing with issues"
    return {"markdown": markdown, **data}


def _report() -> dict[str, Any]:
    return {"date": "2026-11-21", "created_at": T.isoformat(), "late": False, "trigger": "schedule",
            "health": "OK", "language": "ko", "markdown": "# 보고서", "figures": {"summary": {"tasks": 3}, "x": 0.1}}  # fmt: skip


def _versions() -> list[dict[str, Any]]:
    stats = [
        VersionStats("v1", {"accepted": 9, "rejected": 1}, {"exceeds_balance": 1}),
        VersionStats("v2", {"accepted": 1}),
    ]
    return [asdict(item) for item in compare(stats)]


def _conversation() -> dict[str, Any]:
    return {"conversation_id": "c-1", "title": "계산", "owner": "abcd1234", "created_at": T.isoformat()}


def _schedule(enabled: bool = True) -> dict[str, Any]:
    return {"name": "ledger-hourly", "task": "fleet.ping", "cron": "0 * * * *", "timezone": "Asia/Seoul",
            "args": [1, "é"], "kwargs": {"x": 1.5}, "queue": None, "priority": 2, "enabled": enabled,
            "created_by": "abcd1234", "created_at": T.isoformat(), "updated_at": T.isoformat()}  # fmt: skip


SAMPLES: list[tuple[str, str, list[Any]]] = [
    ("GET", "/health/live", [{"status": "ok"}]),
    ("GET", "/api/v1/agent/status/{run_id}", [_run_record()]),
    ("DELETE", "/api/v1/agent/cancel/{run_id}", [_run_record()]),
    ("POST", "/api/v1/agent/{run_id}/approve", [_run_record()]),
    ("POST", "/api/v1/agent/{run_id}/reject", [_run_record()]),
    ("GET", "/api/workflow/{run_id}", [_run_record()]),
    ("POST", "/api/v1/agent/batch", [{"run_ids": ["a", "b"]}]),
    ("GET", "/api/v1/tools", [[tool.describe() for tool in default_registry().tools()]]),
    ("GET", "/api/v1/tools/{tool_id}", [tool.describe() for tool in default_registry().tools()]),
    ("POST", "/api/v1/tools/{tool_id}/execute",
     [{"tool": "calculator:v1", "args": {"expression": "2*3"}, "output": {"value": 6}, "duration_ms": 0.042},
      {"tool": "clock:v1", "args": {}, "output": None, "duration_ms": 1e-05}]),
    ("POST", "/api/v1/ledger/events", _submitted()),
    ("GET", "/api/v1/ledger/results/{event_id}", _ledger_results()),
    ("GET", "/api/v1/ledger/versions", [_versions()]),
    ("POST", "/api/v1/reports/run",
     [{"date": "2026-11-21", "stored": True, "late": False, "health": "WARNING", "tasks": 10, "failures": 1,
       "issues": ["worker_down"], "files": {"markdown": "/r/2026-11-21.md"}},
      {"date": "2026-11-21", "stored": False, "reason": "exists"}]),
    ("GET", "/api/v1/briefing", [_briefing()]),
    ("GET", "/api/v1/schedules", [{"timezone": "Asia/Seoul", "schedules": [_schedule()]}, {"timezone": "UTC", "schedules": []}]),
    ("POST", "/api/v1/schedules", [_schedule()]),
    ("GET", "/api/v1/alerts",
     [{"evaluator": "api-123@host", "incidents": [{"rule": "queue_without_worker", "labels": {"queue": "ledger"},
                                                   "state": "firing", "since": T.isoformat(), "value": 3.5}],
       "silences": {"error_rate": T.isoformat()},
       "history": [{"at": T.isoformat(), "incident_id": "i-1", "rule": "queue_without_worker",
                    "labels": {"queue": "ledger"}, "state": "firing", "severity": "critical", "summary": "ledger ⚠"}]},
      {"evaluator": None, "incidents": [], "silences": {}, "history": []}]),
    ("POST", "/api/v1/conversations", [_conversation()]),
    ("GET", "/api/v1/conversations", [[_conversation(), {**_conversation(), "owner": None, "title": ""}], []]),
    ("GET", "/api/v1/conversations/{conversation_id}",
     [{**_conversation(), "turns": [{"run_id": "r", "input": "21*2", "status": "succeeded", "answer": "42",
                                      "value": "42", "error": None, "created_at": T.isoformat()}]}]),
    ("POST", "/api/v1/conversations/{conversation_id}/turns",
     [{"run_id": "r", "status": "pending", "status_url": "/api/v1/agent/status/r"}]),
    ("DELETE", "/api/v1/schedules/{name}", [{"removed": "ledger-hourly"}]),
    ("POST", "/api/v1/schedules/{name}/pause", [_schedule(enabled=False)]),
    ("POST", "/api/v1/schedules/{name}/resume", [_schedule()]),
    ("GET", "/api/v1/config", [get_settings().masked()]),
    ("POST", "/api/v1/ping",
     [{"task_id": "t", "queue": "ledger", "priority": 0, "x_correlation_id": "c", "answer": {"hostname": "w@h"}},
      {"task_id": "t", "queue": "agents", "priority": 9, "x_correlation_id": "c", "answer": None}]),
]  # fmt: skip


def served(route: Any, value: Any) -> bytes:
    """The bytes FastAPI sends for a route's return value (validated by its model, dumped by pydantic)."""

    async def go() -> bytes:
        body: bytes = await serialize_response(
            field=route.response_field,
            response_content=value,
            exclude_unset=route.response_model_exclude_unset,
            by_alias=route.response_model_by_alias,
            dump_json=True,
        )
        return body

    return anyio.run(go)


def route_of(method: str, path: str) -> Any:
    return next(r for r in ROUTES if r.path_format == path and method in r.methods)


@pytest.mark.parametrize(("method", "path", "values"), SAMPLES, ids=[f"{m} {p}" for m, p, _ in SAMPLES])
def test_a_response_model_sends_the_same_json_bytes_as_the_bare_value(
    method: str, path: str, values: list[Any]
) -> None:
    # Given what the route's service returns (before the models, the route sent it as a bare dict or list)
    route = route_of(method, path)
    assert route.response_model is not None
    for value in values:
        before = TypeAdapter(Any).dump_json(value)
        # When the route's model validates and serialises it
        # Then the client receives the very same bytes
        assert served(route, value) == before


def test_every_route_with_a_json_model_has_a_sample_above() -> None:
    sampled = {(method, path) for method, path, _ in SAMPLES}
    # Routes answering a JSONResponse of their own (negotiated or with a status of their own) send it unvalidated
    unvalidated = {"/api/v1/agent/run", "/health/ready", "/health/startup", "/api/health", "/api/workflow",
                   "/api/v1/reports/latest", "/api/v1/reports/{day}"}  # fmt: skip
    # The operator's routes (runs, approvals, dead letters, failed tasks, ledger lookups) were built with their
    # models: no bare value sent before them to compare with. Their real answers pass through the models in
    # tests/e2e/test_operations_api.py, test_approvals_api.py and test_resume_api.py.
    built_with_models = ("/api/v1/runs", "/api/v1/approvals", "/api/v1/dead-letters", "/api/v1/failed-tasks",
                         "/api/v1/ledger/accounts", "/api/v1/ledger/correlations", "/api/v1/ledger/recent",
                         "/api/v1/ledger/rejections")  # fmt: skip
    for route in ROUTES:
        if route.response_model is None or route.path_format in unvalidated:
            continue
        if route.path_format.startswith(built_with_models):
            continue
        for method in route.methods:
            assert (method, route.path_format) in sampled, f"{method} {route.path_format}"


@pytest.mark.parametrize(
    ("model", "value"),
    [
        (Report, _report()),
        (Accepted, {"run_id": "r", "status": "pending", "status_url": "/api/v1/agent/status/r"}),
        (PendingRun, {"run_id": "r", "status": "pending", "stages": [], "subtasks": [], "output": None,
                      "error": "no worker started the run within 5 s"}),
        (Health, {"status": "error", "components": [Component("broker", "ok", "PONG", 0.5).as_dict(),
                                                    Component("queue:agents", "error").as_dict(details=False)]}),
        (LegacyHealth, {"status": "ok", "components": {"broker": Component("broker", "ok").as_dict(details=False)}}),
    ],
)  # fmt: skip
def test_an_answer_sent_as_is_matches_its_documented_model(model: type[BaseModel], value: dict[str, Any]) -> None:
    # Given an answer a route sends as a JSONResponse of its own (its status or media type negotiated)
    # Then it is what the document says, and the model would not change it
    parsed = model.model_validate(value)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == value

"""The API's response shapes: a pydantic model per route's answer, and the problem+json error shapes.

Each model lists its fields in the order the services write them and allows extra keys, so validating an
answer and serialising it again gives the same JSON bytes as before (tests/unit/test_gateway_responses.py).
A field a service does not always write is optional, and its route sets `response_model_exclude_unset`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from agents.models import RunRecord, RunStatus
from beat.analyzer import Issue
from gateway.problems import PROBLEM_TYPE
from worker.settings import Settings

# A JSON number kept as sent: a `float` field would turn 1 into 1.0.
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class Shape(BaseModel):
    """A JSON object of known keys; keys added later by a service pass through unchanged."""

    model_config = ConfigDict(extra="allow")


# Errors (RFC 9457 application/problem+json, from gateway.problems)


class Problem(Shape):
    """An error: `code` is stable, `type` is the code's URI, `detail` says what went wrong."""

    type: str = Field(examples=["https://agent-fleet.dev/problems/run_not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    code: str = Field(examples=["run_not_found"])
    detail: str
    instance: str | None = Field(default=None, description="The request's path.")


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(examples=["queue"])
    message: str


class ValidationProblem(Problem):
    """422 `validation_failed`: every invalid field of the request (`detail` names the first)."""

    errors: list[FieldError] = Field(default_factory=list)


class ForbiddenProblem(Problem):
    """403 `forbidden`: the key lacks the route's scope."""

    required_scope: str | None = None


# What each status means on the routes that document it; the model of its body.
PROBLEMS: dict[int, tuple[str, type[Problem]]] = {
    400: ("a domain error of the request (`code` says which)", Problem),
    401: ("no API key while keys exist, or an unknown or revoked one (`WWW-Authenticate: Bearer`)", Problem),
    403: ("the key lacks the route's scope (`required_scope`)", ForbiddenProblem),
    404: ("not found (`code` says what: `run_not_found`, `tool_not_found`, ...)", Problem),
    409: ("the request conflicts with the current state (`code` says which)", Problem),
    413: ("the request body exceeds gateway.max_body_bytes", Problem),
    422: ("the path, query, headers or body are invalid (`errors` lists each field)", ValidationProblem),
    429: ("past a rate limit or the bound of waiting requests (`Retry-After`)", Problem),
    503: ("the broker, the database or a store is unavailable, or too many requests wait (`Retry-After`)", Problem),
    504: ("no result within the wait timeout", Problem),
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting these problem+json answers."""
    return {status: {"model": PROBLEMS[status][1], "description": PROBLEMS[status][0]} for status in statuses}


def problem_media(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with each problem answer under `application/problem+json`, the type it is sent as
    (FastAPI files every documented model under the route's `application/json`)."""
    names = {model.__name__ for _, model in PROBLEMS.values()}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if str(schema.get("$ref", "")).rsplit("/", 1)[-1] in names:
                    content[PROBLEM_TYPE] = content.pop("application/json")
    return document


# Every route with a key answers these: authentication, scope, rate limit, rate-limit store down.
KEYED = (401, 403, 429, 503)


# Health


class Live(Shape):
    """The API process is up."""

    status: Literal["ok"]


class Component(Shape):
    """One component's state; `detail` and `latency_ms` only for a `read` key (or while no key exists)."""

    name: str = Field(examples=["queue:agents"])
    status: Literal["ok", "error"]
    detail: str | None = None
    latency_ms: Number | None = None


class Health(Shape):
    """The overall status (200 `ok`, 503 `error`) and each component's."""

    status: Literal["ok", "error"]
    components: list[Component]


class LegacyHealth(Shape):
    """As /health/ready, components by name (the answer older load balancers expect)."""

    status: Literal["ok", "error"]
    components: dict[str, Component]


# Fleet


class PingAnswer(Shape):
    """The ping task's id and the worker's answer (None when none came within `wait_s`)."""

    task_id: str
    queue: str
    priority: int
    x_correlation_id: str
    answer: dict[str, Any] | None


def _masked_settings() -> type[Shape]:
    """The settings as GET /api/v1/config shows them: every field of worker.settings.Settings, secrets masked."""
    fields: dict[str, Any] = {
        name: (Any, Field(description=info.description))
        for name, info in Settings.model_fields.items()
        if not info.exclude
    }
    model: type[Shape] = create_model("MaskedSettings", __base__=Shape, __module__=__name__, **fields)
    model.__doc__ = "The fleet's settings with secrets and URL passwords masked (`***`)."
    return model


MaskedSettings = _masked_settings()


# Agents


class Accepted(Shape):
    """A run was queued: where to follow it (also in `Location`)."""

    run_id: str
    status: Literal["pending"]
    status_url: str = Field(examples=["/api/v1/agent/status/3f1c..."])


class PendingRun(Shape):
    """A run no worker started within the wait: the run record to come has more fields."""

    run_id: str
    status: RunStatus
    stages: list[Any]
    subtasks: list[Any]
    output: dict[str, Any] | None
    error: str | None


class RunIds(Shape):
    """The run ids of a batch, in the order of its requests."""

    run_ids: list[str]


class ToolInfo(Shape):
    """A registered tool."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(examples=["calculator"])
    version: str = Field(examples=["v1"])
    description: str
    side_effect: bool
    scope: str | None
    needs_approval: bool = Field(description="A person approves each call (side-effecting MCP tools by default).")
    origin: str | None = Field(description="The MCP server that serves the tool; null for a built-in one.")
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON schema of the tool's arguments.")
    schema_hash: str


class ToolOutput(Shape):
    """A tool call's output and duration."""

    tool: str = Field(examples=["calculator:v1"])
    args: dict[str, Any]
    output: Any
    duration_ms: Number


# Ledger


class Queued(Shape):
    """One event handed to the fleet, or skipped by a filter rule (`skipped` says why)."""

    event_id: str | None
    priority: int
    skipped: str | None
    task_id: str | None


class Violation(Shape):
    """Why an event was rejected, for one field."""

    code: str
    field: str
    message: str


class QuickRunResult(Shape):
    """The result of one ledger event (the public quick-run result)."""

    event_id: str | None
    event_type: str | None = None
    status: str = Field(examples=["accepted"], description="accepted, rejected, duplicate or skipped")
    codes: list[str]
    violations: list[Violation] | None = None
    api_version: str | None = None
    correlation_id: str | None = None
    snapshot_id: str | None = None
    duration_ms: Number | None = None
    anomalies: list[dict[str, Any]] | None = None
    original_status: str | None = None
    original_codes: list[str] | None = None
    reason: str | None = Field(default=None, description="Why a filter rule skipped the event.")


class Rejected(Shape):
    """A rejected event's id and codes."""

    event_id: str | None
    codes: list[str]


class Submitted(Shape):
    """The events queued; with `wait`, their results and ids by outcome (`results` null past the timeout)."""

    queued: list[Queued]
    results: list[QuickRunResult] | None = None
    accepted: list[str | None] | None = None
    rejected: list[Rejected] | None = None
    duplicates: list[str | None] | None = None
    skipped: list[str | None] | None = None


class VersionCounts(Shape):
    """Counts of one api_version, flagged when it departs from the previous version."""

    api_version: str
    statuses: dict[str, int]
    codes: dict[str, int]
    departs: bool
    why: str


# Reports


class Report(Shape):
    """A stored report: its date, health, Markdown and figures."""

    date: str = Field(examples=["2026-11-21"])
    created_at: str
    late: bool
    trigger: str
    health: str = Field(examples=["OK"])
    language: str
    markdown: str
    figures: dict[str, Any] | None


class ReportMade(Shape):
    """A report made now (`stored` false with a `reason` when one existed and `replace` was false)."""

    date: str
    stored: bool
    late: bool | None = None
    health: str | None = None
    tasks: Number | None = None
    failures: Number | None = None
    issues: list[str] | None = None
    files: dict[str, str] | None = None
    reason: str | None = None


class BriefingComponent(Shape):
    """A component's state in the briefing."""

    name: str
    status: str
    detail: str


class Briefing(Shape):
    """The fleet's current state: Markdown for a person, the same as data for a program."""

    markdown: str
    health: str
    components: list[BriefingComponent]
    issues: list[Issue] = Field(description="Each problem found, with the actions for it.")


__all__ = [
    "KEYED",
    "Accepted",
    "Briefing",
    "Health",
    "LegacyHealth",
    "Live",
    "MaskedSettings",
    "PendingRun",
    "PingAnswer",
    "Problem",
    "QuickRunResult",
    "Report",
    "ReportMade",
    "RunIds",
    "RunRecord",
    "Submitted",
    "ToolInfo",
    "ToolOutput",
    "ValidationProblem",
    "VersionCounts",
    "problems",
]

"""Agent workflows and tools: thin calls into gateway.services.agents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from agents.errors import AgentError, RunNotFound
from agents.models import WorkflowRequest, unstorable_path
from gateway import sse
from gateway.deps import Config, ReadKey, RunKey, Waits, WaitSlot
from gateway.keys import Principal
from gateway.problems import ApiProblem, classify
from gateway.responses import KEYED, Accepted, PendingRun, RunIds, RunRecord, ToolInfo, ToolOutput, problems
from gateway.services import agents as service
from gateway.services import approvals
from gateway.sse import format_event

router = APIRouter(prefix="/api/v1", tags=["agents"], responses=problems(*KEYED))
# Server-sent events: `run` first, then each stage and subtask event, ending with `run_finished` or `error`.
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "server-sent events"}
}
RunId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class BatchRequest(BaseModel):
    """Several workflow requests submitted at once."""

    model_config = ConfigDict(extra="forbid")

    requests: list[WorkflowRequest] = Field(min_length=1, max_length=100)


class RejectRequest(BaseModel):
    """Why a held run is rejected."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")  # NUL: PostgreSQL's text refuses it


class ToolCall(BaseModel):
    """Arguments of one tool call."""

    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _storable(self) -> ToolCall:
        where = unstorable_path(self.args, "args")
        if where is not None:
            raise PydanticCustomError("invalid_text", "{where} holds a lone surrogate or NUL", {"where": where})
        return self


def owned(run_id: str, who: Principal) -> dict[str, Any]:
    """The run record when the caller may see it: its own run, or any with `operator`; else 404 (another key's
    run is not revealed)."""
    record = service.run_status(run_id)
    if not who.owns(record.get("owner")):
        raise RunNotFound(f"no run {run_id}")
    return record


def accepted(run_id: str) -> JSONResponse:
    """202 with where to follow the run."""
    body = {"run_id": run_id, "status": "pending", "status_url": f"/api/v1/agent/status/{run_id}"}
    return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})


@router.post(
    "/agent/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted | RunRecord | PendingRun,
    responses={
        200: {"model": RunRecord, "description": "with `wait`: the run record once it rests"},
        202: {"description": "queued; with `wait`, the run record (or a pending run) when it did not rest in time"},
        **problems(409, 413, 422),
    },
)
def run(request: WorkflowRequest, config: Config, who: RunKey, _slot: WaitSlot, wait: bool = False) -> JSONResponse:
    """Start a workflow; with `?wait=true`, the run record once it rests (within gateway.wait_timeout_s)."""
    run_id = service.submit(request, who.granted, owner=who.key_id)
    if not wait:
        return accepted(run_id)
    try:
        record = service.wait_for_run(run_id, config.wait_timeout_s)
    except RunNotFound:
        return accepted(run_id)  # no worker has picked the run up yet: it is queued, not missing
    resting = record.get("status") in service.RESTING
    return JSONResponse(record, status_code=200 if resting else 202)


def _events(run_id: str, last_event_id: str, timeout_s: float) -> Iterator[bytes]:
    yield format_event(f"{run_id}/0", "run", {"run_id": run_id})
    try:
        for entry_id, event in service.progress(run_id, last_event_id, timeout_s, quiet_every_s=sse.HEARTBEAT_S):
            if not entry_id:
                yield b": heartbeat\n\n"  # a comment line: proxies keep a quiet stream open, clients ignore it
                continue
            yield format_event(f"{run_id}/{entry_id}", str(event.get("type", "event")), event)
    except AgentError as exc:
        http_status, code = classify(exc)
        yield format_event(f"{run_id}/error", "error", {"status": http_status, "code": code, "detail": str(exc)})


@router.post(
    "/agent/run/stream", response_class=StreamingResponse, responses={**EVENT_STREAM, **problems(409, 413, 422)}
)
def run_stream(
    request: WorkflowRequest,
    config: Config,
    who: RunKey,
    waits: Waits,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> StreamingResponse:
    """Start a workflow and stream its stage and subtask events (SSE); `Last-Event-ID` resumes the same run."""
    run_id, _, entry = (last_event_id or "").partition("/")
    if run_id and entry:
        owned(run_id, who)  # resuming: only a run the caller may see
    slot = waits.slot()  # before submitting: a refused stream starts nothing
    try:
        if not (run_id and entry):
            run_id, entry = service.submit(request, who.granted, owner=who.key_id), "0"
        elif not entry.replace("-", "").isdigit():
            entry = "0"
    except BaseException:
        slot.release()
        raise
    return StreamingResponse(
        waits.slots.hold_while(slot, _events(run_id, entry, config.stream_timeout_s)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


@router.get(
    "/agent/run/{run_id}/events",
    response_class=StreamingResponse,
    responses={**EVENT_STREAM, **problems(404, 422)},
)
def run_events(
    run_id: RunId,
    config: Config,
    who: ReadKey,
    waits: Waits,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> StreamingResponse:
    """Follow an existing run's events (SSE), resuming after `Last-Event-ID`."""
    owned(run_id, who)  # 404 before the stream starts
    entry = (last_event_id or "").rpartition("/")[2] or "0"
    entry = entry if entry.replace("-", "").isdigit() else "0"
    slot = waits.slot()
    return StreamingResponse(
        waits.slots.hold_while(slot, _events(run_id, entry, config.stream_timeout_s)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


@router.post(
    "/agent/batch", status_code=status.HTTP_202_ACCEPTED, response_model=RunIds, responses=problems(409, 413, 422)
)
def batch(body: BatchRequest, who: RunKey) -> dict[str, Any]:
    """Start several workflows; their run ids in order."""
    return {"run_ids": [service.submit(request, who.granted, owner=who.key_id) for request in body.requests]}


@router.get("/agent/status/{run_id}", response_model=RunRecord, responses=problems(404, 422))
def run_status(run_id: RunId, who: ReadKey) -> dict[str, Any]:
    """The run record (the caller's own run, or any with `operator`): status, stages, subtask results, output."""
    return owned(run_id, who)


@router.delete("/agent/cancel/{run_id}", response_model=RunRecord, responses=problems(404, 409, 422))
def cancel(run_id: RunId, who: RunKey) -> dict[str, Any]:
    """Cancel a run (partial results stay); the run record."""
    owned(run_id, who)
    return service.cancel(run_id, actor=f"key:{who.key_id}")


@router.post("/agent/{run_id}/approve", response_model=RunRecord, responses=problems(404, 409, 422))
def approve(run_id: RunId, who: RunKey) -> dict[str, Any]:
    """Release a run awaiting approval to the executor (not by the key that submitted it; /api/v1/approvals binds
    the decision to the plan's digest)."""
    owned(run_id, who)
    return approvals.approve(run_id, who, None)


@router.post("/agent/{run_id}/reject", response_model=RunRecord, responses=problems(404, 409, 413, 422))
def reject(run_id: RunId, who: RunKey, body: RejectRequest | None = None) -> dict[str, Any]:
    """End a run awaiting approval as rejected."""
    owned(run_id, who)
    return approvals.reject(run_id, who, None, body.reason if body else "")


@router.get("/tools", tags=["tools"], response_model=list[ToolInfo])
def tools(_who: ReadKey) -> list[dict[str, Any]]:
    """Every registered tool: name, version, description, schema, side-effect flag."""
    return service.list_tools()


ToolId = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-z][a-z0-9_.]*(:v[0-9]{1,3})?$")]


@router.get("/tools/{tool_id}", tags=["tools"], response_model=ToolInfo, responses=problems(404, 422))
def tool(tool_id: ToolId, _who: ReadKey) -> dict[str, Any]:
    """One tool by `name` or `name:version`."""
    name, _, version = tool_id.partition(":")
    for described in service.list_tools():
        if described["name"] == name and described["version"] == (version or described["version"]):
            return described
    raise ApiProblem(404, "tool_not_found", f"no tool {tool_id!r}")


@router.post(
    "/tools/{tool_id}/execute",
    tags=["tools"],
    response_model=ToolOutput,
    responses=problems(400, 404, 409, 413, 422, 503),
)
def execute(tool_id: ToolId, call: ToolCall, _who: RunKey) -> dict[str, Any]:
    """Call a side-effect-free tool in the API process; its output and duration."""
    return service.test_tool(tool_id, call.args)

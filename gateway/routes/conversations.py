"""Conversations: create, list, read with turns, post a turn; and a WebSocket streaming each turn's progress."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.errors import AgentError, RunNotFound
from agents.models import WorkflowRequest, unstorable_path
from gateway.auth import authenticate
from gateway.config import get_gateway_config
from gateway.deps import Config, ReadKey, RunKey, WaitSlot, admit
from gateway.keys import Principal
from gateway.problems import ApiProblem, classify
from gateway.responses import KEYED, RunRecord, problems
from gateway.services import agents as runs
from gateway.services import conversations as service

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"], responses=problems(*KEYED))
ConversationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class NewConversation(BaseModel):
    """A conversation to create."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=200, pattern=r"^[^\x00]*$")

    @model_validator(mode="after")
    def _storable(self) -> NewConversation:
        if unstorable_path(self.title, "title") is not None:
            raise ValueError("title holds a lone surrogate, not storable text")
        return self


class Conversation(BaseModel):
    """A conversation: its id, title, the key that owns it, when it began."""

    conversation_id: str
    title: str
    owner: str | None
    created_at: str


class Turn(BaseModel):
    """One run of the conversation: what was asked and what came back."""

    run_id: str
    input: str
    status: str
    answer: str | None
    value: str | None = Field(description="The run's last calculated value: what 'it' refers to in the next turn.")
    error: str | None
    created_at: str | None


class ConversationWithTurns(Conversation):
    """A conversation and its turns, oldest first."""

    turns: list[Turn]


class TurnRequest(BaseModel):
    """The next turn: the text, and optionally the profile and options of its run."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, max_length=20_000)
    profile: str = Field(default="local", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _a_valid_request(self) -> TurnRequest:
        """Checked as the workflow request it becomes (queue, finite numbers, storable text): 422, not later."""
        try:
            WorkflowRequest(input=self.input, profile=self.profile, options=self.options)
        except ValidationError as exc:
            raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        return self


class TurnAccepted(BaseModel):
    """A turn's run was queued: where to follow it."""

    run_id: str
    status: str
    status_url: str


WAITED: dict[int | str, dict[str, Any]] = {
    200: {"model": RunRecord, "description": "with ?wait=true: the turn's run record once it rests"}
}


def _scope(who: Principal) -> dict[str, Any]:
    """Whose conversations the caller sees: its own, or everyone's with `operator`."""
    return {"owner": who.key_id, "every": who.allows("operator")}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Conversation, responses=problems(409, 413, 422))
def create(body: NewConversation, who: RunKey) -> dict[str, Any]:
    """Start a conversation; post turns to it, or talk over its WebSocket."""
    return service.create(body.title, who.key_id)


@router.get("", response_model=list[Conversation])
def list_conversations(who: ReadKey) -> list[dict[str, Any]]:
    """The caller's conversations (every key's with `operator`), newest first."""
    return service.conversations(who.key_id, who.allows("operator"))


@router.get("/{conversation_id}", response_model=ConversationWithTurns, responses=problems(404, 422))
def read(conversation_id: ConversationId, who: ReadKey) -> dict[str, Any]:
    """The conversation with its turns (404 for another key's)."""
    return service.get(conversation_id, **_scope(who))


def _submit(conversation_id: str, body: TurnRequest, who: Principal) -> str:
    return service.post_turn(
        conversation_id, body.input, profile=body.profile, options=body.options, scopes=who.granted, **_scope(who)
    )


@router.post(
    "/{conversation_id}/turns",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TurnAccepted,
    responses=WAITED | problems(404, 409, 413, 422),
)
def post_turn(
    conversation_id: ConversationId, body: TurnRequest, config: Config, who: RunKey, _slot: WaitSlot, wait: bool = False
) -> Any:
    """Ask the next turn: its run sees the earlier turns. With `?wait=true`, the run record once it rests."""
    run_id = _submit(conversation_id, body, who)
    accepted = {"run_id": run_id, "status": "pending", "status_url": f"/api/v1/agent/status/{run_id}"}
    if not wait:
        return accepted
    try:
        record = runs.wait_for_run(run_id, config.wait_timeout_s)
    except RunNotFound:
        return accepted
    return JSONResponse(record, status_code=200 if record.get("status") in runs.RESTING else 202)


def _problem(exc: BaseException) -> dict[str, Any]:
    code_status, code = (exc.status, exc.code) if isinstance(exc, ApiProblem) else classify(exc)
    detail = exc.detail if isinstance(exc, ApiProblem) else str(exc)
    return {"type": "error", "status": code_status, "code": code, "detail": detail}


def _ws_principal(websocket: WebSocket) -> Principal:
    """The caller of a WebSocket, by the same keys and the `run` scope (and rate limit) as the routes."""
    host = websocket.client.host if websocket.client else ""
    who = authenticate(websocket.headers, host, websocket.url.path)
    admit(who, "run", get_gateway_config(), host)
    return who


@router.websocket("/{conversation_id}/ws")
async def talk(websocket: WebSocket, conversation_id: str) -> None:
    """Send `{"input": "..."}` (and optionally `profile`, `options`) per turn; receive `{"type": "run"}`, the run's
    progress events as they happen, then `{"type": "answer", ...}`. Errors come as `{"type": "error"}`."""
    await websocket.accept()
    try:
        who = await anyio.to_thread.run_sync(_ws_principal, websocket)
        await anyio.to_thread.run_sync(lambda: service.get(conversation_id, **_scope(who)))
    except (ApiProblem, AgentError) as exc:
        problem = _problem(exc)
        await websocket.send_json(problem)
        await websocket.close(code=4000 + int(problem["status"]))
        return
    try:
        while True:
            await _one_turn(websocket, conversation_id, who)
    except WebSocketDisconnect:
        return


async def _one_turn(websocket: WebSocket, conversation_id: str, who: Principal) -> None:
    """Read one turn, run it, stream its progress and answer; a refused turn is an error message, not a close."""
    try:
        body = TurnRequest.model_validate(await websocket.receive_json())
    except (ValidationError, ValueError) as exc:
        await websocket.send_json({"type": "error", "status": 422, "code": "validation_failed", "detail": str(exc)})
        return
    try:
        # Each turn counts against the key's rate limit, as a POST of it would.
        host = websocket.client.host if websocket.client else ""
        await anyio.to_thread.run_sync(admit, who, "run", get_gateway_config(), host)
        run_id = await anyio.to_thread.run_sync(_submit, conversation_id, body, who)
    except (ApiProblem, AgentError) as exc:
        await websocket.send_json(_problem(exc))
        return
    await websocket.send_json({"type": "run", "run_id": run_id})
    timeout = get_gateway_config().stream_timeout_s
    events = runs.progress(run_id, "0", timeout)
    while (item := await anyio.to_thread.run_sync(next, events, None)) is not None:
        await websocket.send_json(item[1])
    try:
        record = await anyio.to_thread.run_sync(runs.run_status, run_id)
    except RunNotFound:
        record = {"status": "pending", "error": f"no worker started the run within {timeout:g} s"}
    output = record.get("output") or {}
    await websocket.send_json({"type": "answer", "run_id": run_id, "status": record["status"],
                               "answer": output.get("answer"), "error": record.get("error"),
                               "results": output.get("results")})  # fmt: skip

"""Approvals (v1): the queue of held runs, the view an approver decides on, decisions bound to the plan's digest."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import ReadKey, RunKey
from gateway.responses import KEYED, problems
from gateway.routes.agents import RunId, owned
from gateway.routes.runs import RunPage
from gateway.services import approvals as service
from gateway.services import runs as run_service

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"], responses=problems(*KEYED))
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="The SHA-256 of the plan shown.")]


class LedgerEffect(BaseModel):
    """One ledger subtask of the plan as the shadow ledger would take it now (nothing applied)."""

    subtask_id: str
    event_id: str | None
    status: str | None = Field(description="accepted, rejected, duplicate or skipped")
    codes: list[str]
    anomalies: list[dict[str, Any]]
    before: dict[str, str | None]
    after: dict[str, str | None]


class ApprovalView(BaseModel):
    """What an approver decides on."""

    run_id: str
    status: Literal["awaiting_approval"]
    owner: str | None
    input: str
    plan: dict[str, Any]
    plan_digest: str
    reasons: list[str] = Field(description="Why the gatekeeper held the run.")
    held_since: datetime
    expires_at: datetime
    expiry_action: Literal["reject", "cancel"]
    ledger_preview: list[LedgerEffect]


class Approve(BaseModel):
    """An approval, bound to the digest of the plan the approver saw."""

    model_config = ConfigDict(extra="forbid")

    plan_digest: Digest


class Reject(BaseModel):
    """A rejection, with its reason."""

    model_config = ConfigDict(extra="forbid")

    plan_digest: Digest | None = None
    reason: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")


class Decided(BaseModel):
    """The run after the decision."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    status: str


@router.get("", response_model=RunPage, responses=problems(422))
def queue(
    who: ReadKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> RunPage:
    """Runs awaiting approval, newest first (a key without `operator`: its own)."""
    owner = None if who.allows("operator") else who.key_id
    given = run_service.RunFilter(statuses=("awaiting_approval",), owner=owner)
    return RunPage.model_validate(run_service.search(given, limit, cursor))


@router.get("/{run_id}", response_model=ApprovalView, responses=problems(404, 422))
def show(run_id: RunId, who: ReadKey) -> dict[str, Any]:
    """The held run's plan, its digest, the gate's reasons, the preview of its ledger effects, its expiry."""
    owned(run_id, who)
    return service.view(run_id)


@router.post("/{run_id}/approve", response_model=Decided, responses=problems(404, 409, 413, 422))
def approve(run_id: RunId, body: Approve, who: RunKey) -> dict[str, Any]:
    """Approve the plan with this digest: 409 `plan_changed` when the plan is another, 403
    `self_approval_forbidden` for the key that submitted the run."""
    owned(run_id, who)
    return service.approve(run_id, who, body.plan_digest)


@router.post("/{run_id}/reject", response_model=Decided, responses=problems(404, 409, 413, 422))
def reject(run_id: RunId, who: RunKey, body: Reject | None = None) -> dict[str, Any]:
    """Reject the held run (its submitter may too), with a reason."""
    owned(run_id, who)
    body = body or Reject()
    return service.reject(run_id, who, body.plan_digest, body.reason)

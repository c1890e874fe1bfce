"""The run history (v1): search, page, cancel in bulk. Thin calls into gateway.services.runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from agents.models import RunRecord, RunStatus
from gateway.deps import OperatorKey, ReadKey, RunKey
from gateway.keys import Principal
from gateway.responses import KEYED, problems
from gateway.routes.agents import RunId, owned
from gateway.services import resume as resume_service
from gateway.services import runs as service

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], responses=problems(*KEYED))
SearchText = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


class RunSummary(BaseModel):
    """One run in a list: enough to find it, not its stages."""

    run_id: str
    status: RunStatus
    mode: str
    input: str = Field(description="The start of the request's input.")
    owner: str | None = Field(description="The visible id of the API key that submitted it.")
    error: str | None
    created_at: datetime
    updated_at: datetime


class RunPage(BaseModel):
    """Runs newest first; `next_cursor` fetches the next page (None on the last)."""

    runs: list[RunSummary]
    next_cursor: str | None


class RunQuery(BaseModel):
    """Which runs: every field narrows the match."""

    model_config = ConfigDict(extra="forbid")

    status: list[RunStatus] = Field(default_factory=list, max_length=10)
    since: datetime | None = None
    until: datetime | None = None
    api_key: str | None = Field(default=None, max_length=64, description="The submitting key's visible id.")
    mode: Literal["planner", "plan_only"] | None = None
    text: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    error: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")


def run_filter(query: RunQuery, who: Principal) -> service.RunFilter:
    """The service's filter; a key without `operator` sees only its own runs, whatever it asked."""
    owner = query.api_key if who.allows("operator") else who.key_id
    return service.RunFilter(tuple(query.status), query.since, query.until, owner, query.mode, query.text,
                             query.error)  # fmt: skip


def query_params(
    status: Annotated[list[RunStatus], Query(max_length=10)] = [],  # noqa: B006  (FastAPI copies it)
    since: datetime | None = None,
    until: datetime | None = None,
    api_key: Annotated[str | None, Query(max_length=64)] = None,
    mode: Literal["planner", "plan_only"] | None = None,
    text: SearchText = None,
    error: SearchText = None,
) -> RunQuery:
    """The filter from the query string."""
    return RunQuery(status=status, since=since, until=until, api_key=api_key, mode=mode, text=text, error=error)


@router.get("", response_model=RunPage, responses=problems(422))
def search(
    who: ReadKey,
    query: Annotated[RunQuery, Depends(query_params)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> RunPage:
    """Runs matching the filter (status, time range, API key, mode, input text, error), newest first."""
    return RunPage.model_validate(service.search(run_filter(query, who), limit, cursor))


class BulkCancel(RunQuery):
    """Cancel the active runs a filter matches: first with `dry_run` (the count), then with that count."""

    dry_run: bool = True
    expected: int | None = Field(default=None, ge=0, description="The dry run's count; required to cancel.")


class BulkCancelResult(BaseModel):
    """A dry run's count, or the runs cancelled (and those that ended meanwhile)."""

    dry_run: bool
    matched: int
    cancelled: list[str] = Field(default_factory=list)
    already_ended: list[str] = Field(default_factory=list)


@router.post("/cancel", response_model=BulkCancelResult, responses=problems(409, 413, 422))
def cancel(body: BulkCancel, who: OperatorKey) -> BulkCancelResult:
    """Bulk cancel: `dry_run` counts the active runs matched; then `dry_run: false` with `expected` cancels them
    (409 `count_changed` when the match is no longer that count)."""
    given = run_filter(body, who)
    if body.dry_run or body.expected is None:
        return BulkCancelResult(dry_run=True, matched=service.count_cancellable(given))
    done = service.cancel_matching(given, body.expected, actor=f"key:{who.key_id}")
    return BulkCancelResult(dry_run=False, matched=body.expected, **done)


class Resume(BaseModel):
    """Where a failed run resumes: the stage it failed in unless named."""

    model_config = ConfigDict(extra="forbid")

    from_stage: Literal["analyze", "gate", "execute", "verify"] | None = None


class Rerun(BaseModel):
    """The new run started from an old one's request."""

    run_id: str
    rerun_of: str
    status: str


@router.post("/{run_id}/resume", response_model=RunRecord, responses=problems(404, 409, 413, 422))
def resume(run_id: RunId, who: RunKey, body: Resume | None = None) -> dict[str, Any]:
    """Resume a failed run from its failed stage (or `from_stage`): what succeeded is kept, and a side effect
    already applied is not applied again; 409 `not_resumable` otherwise."""
    owned(run_id, who)
    return resume_service.resume(run_id, f"key:{who.key_id}", body.from_stage if body else None)


@router.post("/{run_id}/rerun", response_model=Rerun, status_code=202, responses=problems(404, 409, 413, 422))
def rerun(run_id: RunId, who: RunKey) -> dict[str, Any]:
    """Run the same request again as a new run, linked to this one by `options.rerun_of`."""
    owned(run_id, who)
    return resume_service.rerun(run_id, who.granted, who.key_id, f"key:{who.key_id}")

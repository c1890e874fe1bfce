"""Ledger events: thin calls into gateway.services.ledger."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from celery.exceptions import TimeoutError as ResultTimeout
from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import Config, LedgerWriteKey, ReadKey, WaitSlot
from gateway.problems import ApiProblem
from gateway.responses import KEYED, QuickRunResult, Submitted, VersionCounts, problems
from gateway.services import ledger as service
from worker.application import get_app

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"], responses=problems(*KEYED))
EventId = Annotated[str, Field(min_length=1, max_length=128)]


class EventSubmission(BaseModel):
    """One or many ledger events (the envelope of the public contract); the worker validates each."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Submitted,
    response_model_exclude_unset=True,
    responses={202: {"description": "queued; with `wait`, also their results"}, **problems(409, 413, 422)},
)
def submit(
    body: EventSubmission, config: Config, _who: LedgerWriteKey, _slot: WaitSlot, wait: bool = False
) -> dict[str, Any]:
    """Send events as `ledger.quick_run`, each at the priority its rules give; with `wait`, their results.

    `queued` lists every event handed to the fleet (or skipped by a filter), each under its own id even when
    the worker is going to reject it; with `wait`, `results` and the ids by outcome (`accepted`, `rejected`
    with their codes, `duplicates`, `skipped`) follow, once every result came within the timeout.
    """
    sent = service.send(list(body.events), get_app())
    queued = [
        {
            "event_id": s.event_id,
            "priority": s.priority,
            "skipped": s.skipped,
            "task_id": s.result.id if s.result else None,
        }
        for s in sent
    ]
    if not wait:
        return {"queued": queued}
    try:
        results = service.wait(sent, timeout=config.wait_timeout_s)
    except ResultTimeout:
        # Still queued or running: their results come later on /results/{event_id}.
        return {"queued": queued, "results": None}
    return {"queued": queued, "results": results, **service.outcomes(results)}


@router.get(
    "/results/{event_id}",
    response_model=QuickRunResult,
    response_model_exclude_unset=True,
    responses=problems(404, 422),
)
def result(event_id: EventId, _who: ReadKey) -> dict[str, Any]:
    """The stored quick-run result of an event."""
    found = service.get_result(event_id)
    if found is None:
        raise ApiProblem(404, "event_not_found", f"no result for event {event_id!r}")
    return found


@router.get("/versions", response_model=list[VersionCounts])
def versions(_who: ReadKey) -> list[dict[str, Any]]:
    """Counts per api_version, each flagged when it departs from the previous version."""
    return [asdict(stats) for stats in service.versions()]

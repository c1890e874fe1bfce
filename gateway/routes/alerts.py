"""Alerts: firing and pending incidents, silences, the evaluator and the last day's history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from gateway.deps import ReadKey
from gateway.responses import KEYED, Shape, problems
from gateway.services import alerts as service

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=problems(*KEYED))


class AlertEvent(Shape):
    """One transition of an incident (pending, firing, resolved)."""

    at: str
    incident_id: str
    rule: str
    labels: dict[str, Any]
    state: str
    severity: str
    summary: str


class Alerts(Shape):
    """The open incidents (firing first), the running silences, who evaluates, and the recent history."""

    evaluator: str | None = Field(description="The process holding the evaluation lease, or null.")
    incidents: list[dict[str, Any]]
    silences: dict[str, str | None] = Field(description="Rule -> the time its silence ends.")
    history: list[AlertEvent]


@router.get("/alerts", response_model=Alerts, responses=problems(422))
def list_alerts(_who: ReadKey, hours: float = Query(24.0, gt=0, le=24 * 90)) -> dict[str, Any]:
    """What `agent alerts list` shows, with the history of the last `hours`."""
    return {**service.overview(), "history": service.history(hours)}

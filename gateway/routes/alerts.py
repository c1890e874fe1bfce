"""Alerts: firing and pending incidents, silences, the evaluator and the last day's history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from gateway.deps import ReadKey
from gateway.services import alerts as service

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts")
def list_alerts(_who: ReadKey, hours: float = Query(24.0, gt=0, le=24 * 90)) -> dict[str, Any]:
    """What `agent alerts list` shows, with the history of the last `hours`."""
    return {**service.overview(), "history": service.history(hours)}

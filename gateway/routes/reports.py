"""Status reports and the briefing: thin calls into gateway.services.reports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from gateway.deps import AdminKey, ReadKey
from gateway.services import reports as service

router = APIRouter(prefix="/api/v1", tags=["reports"])


class ReportRun(BaseModel):
    """Which day's report to make now (today by default), and whether to replace a stored one."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date | None = None
    replace: bool = True


@router.get("/reports/latest")
def latest(_who: ReadKey) -> dict[str, Any]:
    """The newest stored report: date, health, Markdown and figures; 404 `report_not_found` before the first."""
    return service.latest_report()


@router.get("/reports/{day}")
def by_date(day: dt.date, _who: ReadKey) -> dict[str, Any]:
    """The stored report of a date (YYYY-MM-DD)."""
    return service.report_by_date(day)


@router.post("/reports/run", status_code=201)
def run(_who: AdminKey, body: ReportRun | None = None) -> dict[str, Any]:
    """Make a report now: its files, counts, health and issue ids."""
    request = body or ReportRun()
    return service.run_report(request.date, replace=request.replace)


@router.get("/briefing")
def briefing(_who: ReadKey, hours: Annotated[float, Query(gt=0, le=168)] = 1.0) -> dict[str, Any]:
    """The fleet's current state for a person or an LLM: Markdown plus health, components and issues."""
    return service.briefing(hours)

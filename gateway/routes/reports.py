"""Status reports and the briefing: thin calls into gateway.services.reports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from gateway.deps import AdminKey, ReadKey
from gateway.responses import KEYED, Briefing, Report, ReportMade, problems
from gateway.services import reports as service

router = APIRouter(prefix="/api/v1", tags=["reports"], responses=problems(*KEYED))


class ReportRun(BaseModel):
    """Which day's report to make now (today by default), and whether to replace a stored one."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date | None = None
    replace: bool = True


# Either shape, by the request's Accept header: the JSON record, or the report as a page for a browser.
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Report,
        "content": {"text/html": {"schema": {"type": "string"}}},
        "description": "JSON, or HTML for Accept: text/html",
    },
    **problems(404),
}


def _quality(accept: str, wanted: tuple[str, ...]) -> float:
    """The highest q the Accept header gives any of the media ranges in `wanted`."""
    best = 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.lower() in wanted:
            q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
            try:
                best = max(best, min(1.0, float(q)))
            except ValueError:
                continue
    return best


def wants_html(accept: str | None) -> bool:
    """True when the client prefers HTML to JSON (a browser); JSON on a tie, `*/*` or no header."""
    if not accept:
        return False
    html = _quality(accept, ("text/html", "text/*"))
    return html > 0 and html > _quality(accept, ("application/json", "application/*", "*/*"))


def _negotiated(request: Request, day: dt.date | None) -> Any:
    if wants_html(request.headers.get("accept")):
        return HTMLResponse(service.report_page(day), headers={"Vary": "Accept"})
    record = service.report_by_date(day) if day is not None else service.latest_report()
    return JSONResponse(record, headers={"Vary": "Accept"})


@router.get("/reports/latest", response_model=Report, responses=REPORT_RESPONSES)
def latest(request: Request, _who: ReadKey) -> Response:
    """The newest stored report: date, health, Markdown and figures (or the page, for Accept: text/html);
    404 `report_not_found` before the first."""
    response: Response = _negotiated(request, None)
    return response


@router.get("/reports/{day}", response_model=Report, responses=REPORT_RESPONSES | problems(422))
def by_date(day: dt.date, request: Request, _who: ReadKey) -> Response:
    """The stored report of a date (YYYY-MM-DD): JSON, or an HTML page for a browser (Accept: text/html)."""
    response: Response = _negotiated(request, day)
    return response


@router.post(
    "/reports/run",
    status_code=201,
    response_model=ReportMade,
    response_model_exclude_unset=True,
    responses=problems(409, 413, 422),
)
def run(_who: AdminKey, body: ReportRun | None = None) -> dict[str, Any]:
    """Make a report now: its files, counts, health and issue ids."""
    request = body or ReportRun()
    return service.run_report(request.date, replace=request.replace)


@router.get("/briefing", response_model=Briefing, responses=problems(422))
def briefing(_who: ReadKey, hours: Annotated[float, Query(gt=0, le=168)] = 1.0) -> dict[str, Any]:
    """The fleet's current state for a person or an LLM: Markdown plus health, components and issues."""
    return service.briefing(hours)

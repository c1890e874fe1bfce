"""The console's pages (GET): runs, a run, approvals, dead letters, failed tasks, the ledger; sign-in."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from agents.errors import AgentError, RunNotFound
from agents.models import RUN_STATUSES
from beat.errors import ReportError
from gateway.console import session as sessions
from gateway.console.context import Console, current, render
from gateway.routes.agents import _events
from gateway.services import agents as agent_service
from gateway.services import approvals, dead_letters, failed_tasks, history, ledger_lookup, runs
from gateway.services import reports as report_service
from gateway.services.errors import OperationError
from worker.agents.ports import stream_key
from worker.redis_client import get_redis

router = APIRouter(prefix="/console", include_in_schema=False)
Text = Annotated[str, Query(max_length=200)]


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, failed: bool = False) -> HTMLResponse:
    """The sign-in form (an API key), with a CSRF token of its own in a cookie."""
    token = secrets.token_urlsafe(32)
    response = render(None, request, "login.html", status_code=401 if failed else 200, login_csrf=token,
                      failed=failed)  # fmt: skip
    sessions.set_cookie(response, request, sessions.LOGIN_COOKIE, token)
    return response


def _forbidden(console: Console) -> HTMLResponse:
    return render(console, console.request, "message.html", status_code=403, message="forbidden")


@router.get("", response_class=HTMLResponse)
@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    status: Annotated[str, Query(max_length=32)] = "",
    text: Text = "",
    error: Text = "",
    api_key: Annotated[str, Query(max_length=64)] = "",
    mode: Annotated[str, Query(max_length=16)] = "",
    hours: Annotated[str, Query(max_length=5, pattern=r"^[0-9]*$")] = "",  # an empty field is "any time"
    cursor: Annotated[str, Query(max_length=400)] = "",
) -> HTMLResponse:
    """The run history with its filters, newest first, a page at a time."""
    console = current(request)
    owner = (api_key or None) if console.who.allows("operator") else console.who.key_id
    given = runs.RunFilter(
        statuses=(status,) if status in RUN_STATUSES else (), owner=owner, text=text or None, error=error or None,
        mode=mode if mode in ("planner", "plan_only") else None,
        since=datetime.now(UTC) - timedelta(hours=int(hours)) if hours and int(hours) else None,
    )  # fmt: skip
    try:
        page = runs.search(given, 50, cursor or None)
    except OperationError as exc:
        page = {"runs": [], "next_cursor": None}
        console.flash(str(exc))
    query = {"status": status, "text": text, "error": error, "api_key": api_key, "mode": mode, "hours": hours}
    return render(console, request, "runs.html", page=page, query=query, statuses=RUN_STATUSES)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One run: timeline, stages, subtasks and verdicts, output; its approval when held; live progress."""
    console = current(request)
    try:
        record = agent_service.run_status(run_id)
    except RunNotFound:
        record = None
    if record is None or not console.who.owns(record.get("owner")):
        return render(console, request, "message.html", status_code=404, message="nothing")
    approval = None
    if record["status"] == "awaiting_approval":
        try:
            approval = approvals.view(run_id)
        except AgentError as exc:
            console.flash(str(exc))
    last = get_redis().xrevrange(stream_key(run_id), count=1)
    return render(console, request, "run.html", run=record, approval=approval, after=last[0][0] if last else "0")


@router.get("/runs/{run_id}/events")
def run_events(
    request: Request,
    run_id: Annotated[str, Path(max_length=64)],
    after: Annotated[str, Query(max_length=40)] = "0",
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> StreamingResponse:
    """The run's progress (SSE) for the page's script, after the entry the page was rendered at."""
    console = current(request)
    record = agent_service.run_status(run_id)
    if not console.who.owns(record.get("owner")):
        raise RunNotFound(f"no run {run_id}")
    entry = (last_event_id or "").rpartition("/")[2] or after
    entry = entry if entry.replace("-", "").isdigit() else "0"
    waits = request.app.state.waits
    slot = waits.acquire(console.who.key_id)
    stream: Iterator[bytes] = waits.hold_while(slot, _events(run_id, entry, 60.0))
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request) -> HTMLResponse:
    """The runs awaiting approval."""
    console = current(request)
    owner = None if console.who.allows("operator") else console.who.key_id
    page = runs.search(runs.RunFilter(statuses=("awaiting_approval",), owner=owner), 100)
    return render(console, request, "approvals.html", page=page)


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters_page(
    request: Request,
    reason: Annotated[str, Query(max_length=64)] = "",
    queue: Annotated[str, Query(max_length=64)] = "",
    task_name: Annotated[str, Query(max_length=256)] = "",
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """Dead letters with their filters; requeue and discard."""
    console = current(request, "operator")
    if not console.who.allows("operator"):
        return _forbidden(console)
    given = dead_letters.LetterFilter(reason or None, queue or None, task_name or None)
    page = dead_letters.search(given, 50, before_id)
    counts = dead_letters.counts(given)
    query = {"reason": reason, "queue": queue, "task_name": task_name}
    return render(console, request, "dead_letters.html", page=page, counts=counts, query=query)


@router.get("/dead-letters/{letter_id}", response_class=HTMLResponse)
def dead_letter_page(request: Request, letter_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> HTMLResponse:
    """One dead letter with its raw message, secrets masked."""
    console = current(request, "operator")
    if not console.who.allows("operator"):
        return _forbidden(console)
    try:
        letter = dead_letters.show(letter_id)
    except OperationError:
        return render(console, request, "message.html", status_code=404, message="nothing")
    return render(console, request, "dead_letter.html", letter=letter)


@router.get("/failed-tasks", response_class=HTMLResponse)
def failed_tasks_page(request: Request, name: Annotated[str, Query(max_length=256)] = "") -> HTMLResponse:
    """Tasks that ended FAILURE; retry."""
    console = current(request, "operator")
    if not console.who.allows("operator"):
        return _forbidden(console)
    return render(console, request, "failed_tasks.html", tasks=failed_tasks.search(name or None, 100), name=name)


@router.get("/ledger", response_class=HTMLResponse)
def ledger_page(
    request: Request,
    account: Annotated[str, Query(max_length=128)] = "",
    correlation_id: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """Account lookup, results by correlation id, rejections by code over the last day."""
    console = current(request)
    view: dict[str, Any] | None = None
    if account:
        try:
            view = ledger_lookup.account(account, 20)
        except OperationError as exc:
            console.flash(str(exc))
    results = ledger_lookup.by_correlation(correlation_id, 100) if correlation_id else []
    rejections = ledger_lookup.rejections(datetime.now(UTC) - timedelta(hours=24))
    return render(console, request, "ledger.html", account=account, view=view, correlation_id=correlation_id,
                  results=results, rejections=rejections, recent=ledger_lookup.recent(20))  # fmt: skip


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request, day: Annotated[str, Query(max_length=10, pattern=r"^[0-9-]*$")] = ""
) -> HTMLResponse:
    """The daily reports made so far, and one of them (the newest unless chosen) with its chart."""
    console = current(request)
    listed = history.recent_reports(60)
    shown = day or (listed[0]["date"].isoformat() if listed else "")
    return render(console, request, "reports.html", reports=listed, shown=shown)


@router.get("/reports/{day}/page", response_class=HTMLResponse)
def report_page(request: Request, day: dt.date) -> HTMLResponse:
    """One report as its own HTML page (chart inlined), framed by the reports page."""
    current(request)
    try:
        page = report_service.report_page(day)
    except ReportError:
        return HTMLResponse("<p>-</p>", status_code=404)
    # Its own page: framed by the console only; its chart is an inlined image.
    headers = {"Content-Security-Policy": "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; "
               "frame-ancestors 'self'", "Cache-Control": "no-store"}  # fmt: skip
    return HTMLResponse(page, headers=headers)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24) -> HTMLResponse:
    """The ledger's alerts of the last hours: unusual amounts per account, unusual event and rejection rates."""
    console = current(request)
    return render(console, request, "alerts.html", alerts=history.recent_alerts(hours), hours=hours)

"""The console's forms (POST): sign in and out, approve, reject, cancel, requeue, discard, retry.

Every form carries the session's CSRF token; each action goes through the same service as the API (and is
audited there), then redirects to the page to show with a one-line message.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agents.errors import AgentError
from gateway.auth import authenticate
from gateway.console import session as sessions
from gateway.console.context import Console, back, current, render
from gateway.console.i18n import words
from gateway.deps import client_host
from gateway.problems import ApiProblem
from gateway.services import agents as agent_service
from gateway.services import approvals, dead_letters, failed_tasks
from gateway.services import resume as resume_service
from gateway.services.errors import OperationError

router = APIRouter(prefix="/console", include_in_schema=False)
Csrf = Annotated[str, Form(max_length=100)]
LetterId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Reason = Annotated[str, Form(max_length=2000, pattern=r"^[^\x00]*$")]
# What an action may fail with: shown to the operator as the page's message.
REFUSALS = (OperationError, AgentError, ApiProblem)


def _checked(request: Request, csrf: str, scope: str) -> Console:
    """The caller of a form: signed in, holding `scope`, with the session's CSRF token."""
    console = current(request, scope)
    if console.session is not None and not sessions.csrf_ok(console.session.csrf, csrf):
        raise ApiProblem(403, "csrf_failed", "the form's CSRF token is not this session's; reload the page")
    if not console.who.allows(scope):
        raise ApiProblem(403, "forbidden", f"this key lacks the {scope!r} scope", required_scope=scope)
    return console


def _done(console: Console, path: str, refusal: Exception | None = None) -> RedirectResponse:
    console.flash(str(refusal) if refusal else words(console.language())["done"])
    return back(path)


@router.post("/login", response_model=None)
def login(request: Request, api_key: Annotated[str, Form(max_length=300)], csrf: Csrf) -> Response:
    """Sign in with an API key: a session starts, its cookie set (the key itself is never stored)."""
    if not sessions.csrf_ok(request.cookies.get(sessions.LOGIN_COOKIE), csrf):
        return back("/console/login?failed=true")
    # The API's own authentication: a failure is counted, logged and throttled per address as on any route.
    try:
        who = authenticate({"authorization": f"Bearer {api_key.strip()}"}, client_host(request), request.url.path)
    except ApiProblem as exc:
        refused = render(None, request, "login.html", status_code=exc.status, login_csrf=csrf, failed=True)
        refused.headers.update(exc.headers)
        return refused
    response = back("/console/runs")
    sessions.start(response, request, who, api_key.strip())
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Csrf) -> RedirectResponse:
    """Sign out: the session is forgotten on the server and in the browser."""
    found = sessions.load(request)
    response = back("/console/login")
    if found is not None and sessions.csrf_ok(found[1].csrf, csrf):
        sessions.end(request, response)
    return response


@router.post("/runs/{run_id}/approve")
def approve(request: Request, run_id: str, csrf: Csrf, plan_digest: Annotated[str, Form(max_length=64)]) -> Response:
    """Approve the plan shown (its digest travels in the form)."""
    console = _checked(request, csrf, "run")
    try:
        _visible(console, run_id)
        approvals.approve(run_id, console.who, plan_digest)
    except REFUSALS as exc:
        return _done(console, f"/console/runs/{run_id}", exc)
    return _done(console, f"/console/runs/{run_id}")


@router.post("/runs/{run_id}/reject")
def reject(request: Request, run_id: str, csrf: Csrf, reason: Reason = "") -> Response:
    """Reject a held run with a reason."""
    console = _checked(request, csrf, "run")
    try:
        _visible(console, run_id)
        approvals.reject(run_id, console.who, None, reason)
    except REFUSALS as exc:
        return _done(console, f"/console/runs/{run_id}", exc)
    return _done(console, f"/console/runs/{run_id}")


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: str, csrf: Csrf) -> Response:
    """Cancel a run that has not ended."""
    console = _checked(request, csrf, "run")
    try:
        _visible(console, run_id)
        agent_service.cancel(run_id, actor=f"key:{console.who.key_id}")
    except REFUSALS as exc:
        return _done(console, f"/console/runs/{run_id}", exc)
    return _done(console, f"/console/runs/{run_id}")


@router.post("/runs/{run_id}/resume")
def resume(request: Request, run_id: str, csrf: Csrf, from_stage: Annotated[str, Form(max_length=16)] = "") -> Response:
    """Resume a failed run from its failed stage (or the one chosen)."""
    console = _checked(request, csrf, "run")
    try:
        _visible(console, run_id)
        resume_service.resume(run_id, f"key:{console.who.key_id}", from_stage or None)
    except REFUSALS as exc:
        return _done(console, f"/console/runs/{run_id}", exc)
    return _done(console, f"/console/runs/{run_id}")


@router.post("/runs/{run_id}/rerun")
def rerun(request: Request, run_id: str, csrf: Csrf) -> Response:
    """Run the same request again as a new run; its page."""
    console = _checked(request, csrf, "run")
    try:
        _visible(console, run_id)
        new = resume_service.rerun(run_id, console.who.granted, console.who.key_id, f"key:{console.who.key_id}")
    except REFUSALS as exc:
        return _done(console, f"/console/runs/{run_id}", exc)
    _recorded(new["run_id"])
    return _done(console, f"/console/runs/{new['run_id']}")


def _recorded(run_id: str, timeout_s: float = 5.0) -> None:
    """Wait briefly for a worker to record a new run, so its page has something to show."""
    from agents.errors import RunNotFound

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            agent_service.run_status(run_id)
            return
        except RunNotFound:
            time.sleep(0.1)


def _visible(console: Console, run_id: str) -> None:
    from agents.errors import RunNotFound

    if not console.who.owns(agent_service.run_status(run_id).get("owner")):
        raise RunNotFound(f"no run {run_id}")


@router.post("/dead-letters/{letter_id}/requeue")
def requeue(request: Request, letter_id: LetterId, csrf: Csrf) -> Response:
    """Requeue one dead letter."""
    console = _checked(request, csrf, "operator")
    try:
        dead_letters.requeue(letter_id, actor=f"key:{console.who.key_id}")
    except REFUSALS as exc:
        return _done(console, "/console/dead-letters", exc)
    return _done(console, "/console/dead-letters")


@router.post("/dead-letters/requeue", response_model=None)
def requeue_matching(
    request: Request,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=64)] = "",
    queue: Annotated[str, Form(max_length=64)] = "",
    task_name: Annotated[str, Form(max_length=256)] = "",
    expected: Annotated[int | None, Form(ge=0)] = None,
) -> Response:
    """Requeue every dead letter a filter matches: without `expected`, a page to confirm the count first."""
    console = _checked(request, csrf, "operator")
    given = dead_letters.LetterFilter(reason or None, queue or None, task_name or None)
    if expected is None:
        count = dead_letters.count_requeueable(given)
        query = {"reason": reason, "queue": queue, "task_name": task_name}
        return render(console, request, "confirm_requeue.html", count=count, query=query)
    try:
        dead_letters.requeue_matching(given, expected, actor=f"key:{console.who.key_id}")
    except REFUSALS as exc:
        return _done(console, "/console/dead-letters", exc)
    return _done(console, "/console/dead-letters")


@router.post("/dead-letters/{letter_id}/discard")
def discard(
    request: Request, letter_id: LetterId, csrf: Csrf, reason: Annotated[str, Form(min_length=1, max_length=2000)]
) -> Response:
    """Discard a dead letter with a reason."""
    console = _checked(request, csrf, "operator")
    try:
        dead_letters.discard(letter_id, f"key:{console.who.key_id}", reason)
    except REFUSALS as exc:
        return _done(console, "/console/dead-letters", exc)
    return _done(console, "/console/dead-letters")


@router.post("/failed-tasks/{task_id}/retry")
def retry(request: Request, task_id: str, csrf: Csrf) -> Response:
    """Retry a failed task."""
    console = _checked(request, csrf, "operator")
    try:
        failed_tasks.retry(task_id, actor=f"key:{console.who.key_id}")
    except REFUSALS as exc:
        return _done(console, "/console/failed-tasks", exc)
    return _done(console, "/console/failed-tasks")


__all__ = ["HTMLResponse", "router"]

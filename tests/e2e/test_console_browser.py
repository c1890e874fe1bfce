"""The console in a real browser (headless Chromium through playwright) over the real API and workers."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ApiServer
from tests.e2e.test_api_security import bearer, create_key, revoke
from tests.e2e.test_operations_api import _dead_letter_of, _seed_runs, _succeeded
from tests.ledger_cases import event, ts
from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("FLEET_TEST_CHROMIUM", "/usr/bin/chromium")
# Set to a folder (docs/console) to keep a screenshot of each page the tests visit.
SHOTS = os.environ.get("FLEET_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's `chromium`); skipped with the reason where none is installed, failed under CI."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but no Chromium at {CHROMIUM}: the console's browser tests would not run")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set FLEET_TEST_CHROMIUM)")
    from playwright.sync_api import sync_playwright  # imported here: the module loads without it

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def people(api_server: ApiServer) -> Iterator[dict[str, dict[str, Any]]]:
    made = {
        "submitter": create_key("--name", "console-submitter", "--scope", "run", "--scope", "ledger:write"),
        "approver": create_key("--name", "console-approver", "--scope", "operator"),
    }
    yield made
    for key in made.values():
        revoke(key)


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _signed_in(browser: Any, server: ApiServer, key: dict[str, Any], locale: str = "en-US") -> Any:
    context = browser.new_context(base_url=server.url, locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/login")
    page.fill("input[name=api_key]", key["token"])
    page.click("#login button")
    page.wait_for_url("**/console/runs")
    return page


def test_signed_out_the_console_asks_for_a_key_and_refuses_a_wrong_one(
    browser: Any, api_server: ApiServer, people: dict[str, dict[str, Any]]
) -> None:
    context = browser.new_context(base_url=api_server.url, locale="ko-KR")
    page = context.new_page()
    # When a signed-out browser opens a console page, it lands on the sign-in form (in Korean, its language)
    page.goto("/console/dead-letters")
    assert page.url.endswith("/console/login") and page.locator("h1").inner_text() == "로그인"
    _shot(page, "login")
    # And a wrong key is refused
    page.fill("input[name=api_key]", "fleet_00000000_not-a-key")
    with page.expect_navigation():
        page.click("#login button")
    assert page.locator("#flash").is_visible() and "/console/runs" not in page.url
    # And a form posted without the session's CSRF token is refused, even with a signed-in cookie
    signed = _signed_in(browser, api_server, people["approver"])
    forged = signed.context.request.post(api_server.url + "/console/logout", form={"csrf": "forged"})
    assert signed.context.request.get(api_server.url + "/console/runs").ok
    assert forged.status in (200, 303) and "/console/runs" in signed.url
    refused = signed.context.request.post(f"{api_server.url}/console/runs/{uuid.uuid4()}/cancel", form={"csrf": "x"})
    assert refused.status == 403
    # And the session cookie is HttpOnly and SameSite=Strict
    cookie = next(c for c in signed.context.cookies() if c["name"] == "fleet_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # When signed out, the console asks for a key again
    signed.click("#sign-out")
    signed.goto("/console/runs")
    assert signed.url.endswith("/console/login")


def test_a_failed_run_is_found_by_filter_and_the_language_toggles(
    browser: Any, api_server: ApiServer, people: dict[str, dict[str, Any]]
) -> None:
    tag = f"con-{uuid.uuid4().hex[:6]}"
    _seed_runs(tag, [people["submitter"]["key_id"]] * 5)
    page = _signed_in(browser, api_server, people["approver"])
    # When the operator filters the runs for failed ones holding the tag
    page.select_option("select[name=status]", "failed")
    page.fill("input[name=text]", tag)
    with page.expect_navigation():
        page.click("#filters button")
    # Then exactly the failed ones are listed, with their error
    rows = page.locator("#runs tr").all_inner_texts()[1:]
    assert len(rows) == 2 and all("failed" in r and f"boom {tag}" in r for r in rows)
    _shot(page, "runs")
    # And an input holding markup is shown as text, never run as markup
    hostile = _seed_runs(f"<img src=x onerror=document.title='owned'> {tag[::-1]}", [people["submitter"]["key_id"]])[0]
    page.goto(f"/console/runs/{hostile}")
    assert "<img src=x" in page.inner_text("main") and page.locator("main img").count() == 0
    assert page.title() != "owned"
    page.go_back()
    # And the toggle shows the same page in Korean
    with page.expect_navigation():
        page.click("#language")
    assert page.locator("h1").inner_text() == "실행" and len(page.locator("#runs tr").all()) == 3


def _held_transfer(server: ApiServer, key: dict[str, Any], p: str) -> str:
    writer = create_key("--name", f"console-w-{p}", "--scope", "ledger:write")
    try:
        for one in (
            event(f"{p}-o1", "account_opened", {"account": f"{p}-a", "currency": "EUR", "opening_balance": "100.00"}),
            event(f"{p}-o2", "account_opened", {"account": f"{p}-b", "currency": "EUR"}),
        ):
            httpx.post(server.url + "/api/v1/ledger/events?wait=true", json={"events": [one]}, headers=bearer(writer),
                       timeout=30).raise_for_status()  # fmt: skip
    finally:
        revoke(writer)
    transfer = {"event_type": "transaction_created", "timestamp": ts(200),
                "data": {"transaction_id": f"{p}-t", "sender": f"{p}-a", "receiver": f"{p}-b", "amount": "25.00",
                         "currency": "EUR"}}  # fmt: skip
    body = {"input": f"validate this event {json.dumps(transfer)}", "options": {"require_approval": True}}
    run_id = str(
        httpx.post(server.url + "/api/v1/agent/run", json=body, headers=bearer(key), timeout=30).json()["run_id"]
    )
    wait_for(lambda: httpx.get(f"{server.url}/api/v1/agent/status/{run_id}", headers=bearer(key), timeout=10)
             .json().get("status") == "awaiting_approval", timeout=90, what="the run to be held")  # fmt: skip
    return run_id


def test_a_held_run_is_refused_to_its_submitter_and_approved_by_another_key_watched_live(
    browser: Any, api_server: ApiServer, people: dict[str, dict[str, Any]]
) -> None:
    p = f"cb{uuid.uuid4().hex[:6]}"
    run_id = _held_transfer(api_server, people["submitter"], p)
    # Given the submitter watching its held run in the console
    mine = _signed_in(browser, api_server, people["submitter"])
    mine.goto(f"/console/runs/{run_id}")
    assert mine.locator("#status").inner_text() == "awaiting_approval"
    # When it tries to approve its own run, it is refused, and the run stays held
    mine.click("#approve")
    assert "another key must approve" in mine.locator("#flash").inner_text()
    assert mine.locator("#status").inner_text() == "awaiting_approval"
    # When the approver opens the run from the approvals queue, it sees the digest and the ledger effects
    theirs = _signed_in(browser, api_server, people["approver"])
    theirs.goto("/console/approvals")
    _shot(theirs, "approvals")
    theirs.click(f"a[href='/console/runs/{run_id}']")
    assert len(theirs.locator("#digest").inner_text()) == 64
    preview = theirs.locator("#preview").inner_text()
    assert f"{p}-a" in preview and "100.00" in preview and "75.00" in preview and "accepted" in preview
    _shot(theirs, "approval")
    # And approves it
    theirs.click("#approve")
    # Then the submitter's page hears it live, and shows the run finished
    mine.wait_for_selector("#live li", timeout=30_000)
    expect(mine.locator("#status")).to_have_text("succeeded", timeout=90_000)
    theirs.goto(f"/console/runs/{run_id}")
    assert theirs.locator("#status").inner_text() == "succeeded"
    _shot(theirs, "run")
    # And the transfer was applied once
    theirs.goto(f"/console/ledger?account={p}-a")
    assert theirs.locator("#balance").inner_text() == "75.00"
    _shot(theirs, "ledger")


def test_a_dead_letter_is_requeued_from_the_console_and_runs(
    browser: Any, api_server: ApiServer, people: dict[str, dict[str, Any]], celery_app: Any
) -> None:
    queue = f"con-{uuid.uuid4().hex[:6]}"
    old = WorkerProcess(queues=queue, name=f"old-{queue}").start(celery_app)
    try:
        sent = celery_app.send_task("tests.greet", args=["console"], queue=queue)
        letter = wait_for(lambda: _dead_letter_of(sent.id), timeout=60, what="the dead letter")
        sent.get(timeout=60, propagate=False)  # settled: a result left pending is unsubscribed when collected
    finally:
        old.stop()
    page = _signed_in(browser, api_server, people["approver"])
    page.goto(f"/console/dead-letters?queue={queue}")
    _shot(page, "dead_letters")
    page.click(f"a[href='/console/dead-letters/{letter['id']}']")
    assert "tests.greet" in page.locator("#raw").inner_text()
    _shot(page, "dead_letter")
    new = WorkerProcess(queues=queue, name=f"new-{queue}", extra=["-I", "tests.requeue_tasks"]).start(celery_app)
    try:
        page.click("#requeue")
        assert page.locator("#flash").is_visible()
        meta = wait_for(lambda: _succeeded(celery_app, sent.id), timeout=60, what="the requeued task to run")
        assert meta["result"] == "hello console"
    finally:
        new.stop()
    assert page.locator(f"#letter-{letter['id']}").count() == 0
    # And a task that failed is listed with a retry button, which sends it again
    failing = celery_app.send_task("fleet.fail", kwargs={"reason": "console retry"}, queue="agents", priority=5)
    failing.get(timeout=60, propagate=False)
    page.goto("/console/failed-tasks?name=fleet.fail")
    _shot(page, "failed_tasks")
    with page.expect_navigation():
        page.click(f"#task-{failing.id} button.retry")
    row = page.locator(f"#task-{failing.id} td").all_inner_texts()
    assert page.locator("#flash").is_visible() and len(row[5]) == 8, row


def test_the_reports_and_alerts_pages_show_what_the_fleet_recorded(
    browser: Any, api_server: ApiServer, people: dict[str, dict[str, Any]]
) -> None:
    from gateway.services.reports import run_report

    # Given today's report, made now
    made = run_report()
    page = _signed_in(browser, api_server, people["approver"])
    # When the operator opens the reports page
    page.goto("/console/reports")
    # Then the report is listed with its health, and shown with its chart in the page
    assert made["health"] in page.locator("#reports").inner_text()
    expect(page.frame_locator("#report").locator("body")).to_contain_text(made["date"][:4], timeout=30_000)
    _shot(page, "reports")
    # And the alerts page answers (the ledger's anomalies of the last day, if any)
    page.goto("/console/alerts")
    assert page.locator("h1").inner_text() == "Alerts"
    _shot(page, "alerts")


def test_a_failed_run_is_resumed_and_run_again_from_the_console(
    browser: Any, api_server: ApiServer, people: dict[str, dict[str, Any]]
) -> None:
    from tests.e2e.test_operations_api import _audited

    key = people["submitter"]
    status = f"{api_server.url}/api/v1/agent/status/"
    # Given a run that failed at its subtask (a division by zero)
    run_id = httpx.post(api_server.url + "/api/v1/agent/run", json={"input": "compute 1/0"}, headers=bearer(key),
                        timeout=30).json()["run_id"]  # fmt: skip
    wait_for(lambda: httpx.get(status + run_id, headers=bearer(key), timeout=10).json().get("status") == "failed",
             timeout=90, what="the run to fail")  # fmt: skip
    page = _signed_in(browser, api_server, key)
    page.goto(f"/console/runs/{run_id}")
    assert "DivisionByZero" in page.locator("#run-error").inner_text()
    # When its owner resumes it from the stage it failed in
    with page.expect_navigation():
        page.click("#resume")
    # Then it ran its subtask again (and failed again, as 1/0 does), the resume audited with who asked
    wait_for(lambda: _audited("run_resumed_by_operator", run_id), what="the resume's audit record")
    assert _audited("run_resumed_by_operator", run_id)[0]["from_stage"] == "execute"
    wait_for(lambda: httpx.get(status + run_id, headers=bearer(key), timeout=10).json().get("status") == "failed",
             timeout=90, what="the resumed run to end")  # fmt: skip
    # When it is run again as a new run, the new run's page shows, linked to the old one
    page.goto(f"/console/runs/{run_id}")
    with page.expect_navigation():
        page.click("#rerun")
    new_id = page.url.rsplit("/", 1)[1]
    assert new_id != run_id
    new = httpx.get(status + new_id, headers=bearer(key), timeout=10).json()
    assert new["request"]["options"]["rerun_of"] == run_id

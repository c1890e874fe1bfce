"""Domain flows over real uvicorn and the session worker: workflows (with streaming) and ledger events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.services import keys as key_service
from tests.e2e.conftest import ApiServer
from tests.ledger_cases import setup

pytestmark = pytest.mark.e2e
REQUEST = {"input": "compute (12+30)*2 and summarise the result", "mode": "planner", "profile": "local"}


@pytest.fixture(scope="module")
def client(api_server: ApiServer) -> Iterator[httpx.Client]:
    """An HTTP client holding a key with the run and ledger:write scopes (revoked afterwards)."""
    info, token = key_service.create_key("e2e-domains", ["run", "ledger:write"])
    with httpx.Client(base_url=api_server.url, headers={"X-API-Key": token}, timeout=120) as http:
        yield http
    key_service.revoke_key(info.key_id)


def sse_events(response: httpx.Response) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of every frame of an SSE response."""
    frames, current = [], {}
    for line in response.iter_lines():
        if not line:
            if "data" in current:
                frames.append((current.get("id", ""), current.get("event", "message"), json.loads(current["data"])))
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return frames


def test_a_workflow_streams_its_stages_then_its_record_shows_the_output(client: httpx.Client) -> None:
    # When a workflow is started on the streaming route
    with client.stream("POST", "/api/v1/agent/run/stream", json=REQUEST) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = sse_events(response)
    # Then the client sees the run id, each stage starting and finishing, subtasks, and the end of the run
    kinds = [kind for _id, kind, _data in frames]
    assert kinds[0] == "run" and kinds[-1] == "run_finished", kinds
    run_id = frames[0][2]["run_id"]
    stages = [data["stage"] for _id, kind, data in frames if kind == "stage_finished"]
    assert stages[:2] == ["analyze", "gate"] and "execute" in stages, stages
    assert "subtask_finished" in kinds
    assert frames[-1][2]["status"] == "succeeded"
    # And the run record holds the output
    record = client.get(f"/api/v1/agent/status/{run_id}").json()
    assert record["status"] == "succeeded" and "84" in json.dumps(record["output"])
    # And a client that reconnects with Last-Event-ID gets only what followed that event
    middle_id = frames[len(frames) // 2][0]
    with client.stream("GET", f"/api/v1/agent/run/{run_id}/events", headers={"Last-Event-ID": middle_id}) as again:
        resumed = sse_events(again)
    assert [f[0] for f in resumed[1:]] == [f[0] for f in frames[len(frames) // 2 + 1 :]]


def test_a_workflow_run_with_wait_answers_with_the_finished_record(client: httpx.Client) -> None:
    answer = client.post("/api/v1/agent/run", params={"wait": "true"}, json=REQUEST)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    started = client.post("/api/v1/agent/run", json=REQUEST)
    assert started.status_code == 202 and started.headers["Location"].endswith(started.json()["run_id"])


def test_older_clients_start_and_read_a_workflow_on_the_compatible_routes(client: httpx.Client) -> None:
    started = client.post("/api/workflow", json=REQUEST)
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    record = client.post("/api/v1/agent/run", params={"wait": "true"}, json={**REQUEST, "input": "compute 1+1"})
    assert record.status_code == 200
    status = client.get(f"/api/workflow/{run_id}")
    assert status.status_code == 200 and status.json()["run_id"] == run_id


def test_an_unknown_run_is_a_404_problem(client: httpx.Client) -> None:
    answer = client.get(f"/api/v1/agent/status/{uuid.uuid4()}")
    assert answer.status_code == 404 and answer.json()["code"] == "run_not_found"


def test_tools_are_listed_and_a_pure_one_executes(client: httpx.Client) -> None:
    tools = client.get("/api/v1/tools").json()
    assert "math.calculate" in {tool["name"] for tool in tools}
    one = client.get("/api/v1/tools/math.calculate:v1")
    assert one.status_code == 200 and one.json()["schema"]["required"] == ["expression"]
    assert client.get("/api/v1/tools/no.such_tool").json()["code"] == "tool_not_found"
    done = client.post("/api/v1/tools/math.calculate/execute", json={"args": {"expression": "(12+30)*2"}})
    assert done.status_code == 200 and done.json()["output"]["value"] in ("84", 84)
    refused = client.post("/api/v1/tools/math.calculate/execute", json={"args": {"expression": "1/0"}})
    assert refused.status_code == 422 and refused.json()["code"] == "tool_input_error"


def test_ledger_events_are_submitted_and_their_results_read(client: httpx.Client) -> None:
    # Given two account openings
    events = setup(f"api{uuid.uuid4().hex[:6]}")[:2]
    # When they are submitted in one request and waited for
    answer = client.post("/api/v1/ledger/events", params={"wait": "true"}, json={"events": events})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [q["event_id"] for q in body["queued"]] == [e["event_id"] for e in events]
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert body["accepted"] == [e["event_id"] for e in events] and body["rejected"] == []
    # Then each result can be read back, and per-version counts include them
    stored = client.get(f"/api/v1/ledger/results/{events[0]['event_id']}")
    assert stored.status_code == 200 and stored.json()["status"] == "accepted"
    assert client.get("/api/v1/ledger/results/never-sent").status_code == 404
    versions = client.get("/api/v1/ledger/versions").json()
    assert any(v["api_version"] == "v1" and v["statuses"].get("accepted", 0) >= 2 for v in versions)


def test_a_good_event_and_one_with_a_float_amount_are_listed_under_their_own_ids(client: httpx.Client) -> None:
    # Given an account opening and a transfer whose amount is the float 5.5 (refused: floats are not money)
    opening = setup(f"flt{uuid.uuid4().hex[:6]}")[0]
    account = opening["data"]["account"]
    transfer = {
        "event_id": f"{opening['event_id']}-float",
        "event_type": "transaction_created",
        "timestamp": opening["timestamp"],
        "api_version": "v1",
        "data": {"transaction_id": f"{account}-t", "sender": account, "receiver": account, "amount": 5.5,
                 "currency": "EUR"},
    }  # fmt: skip
    # When both are submitted and waited for
    answer = client.post("/api/v1/ledger/events", params={"wait": "true"}, json={"events": [opening, transfer]})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    # Then each keeps its id, the accepted list holds only the good one and the rejected list the float one
    assert [q["event_id"] for q in body["queued"]] == [opening["event_id"], transfer["event_id"]]
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert body["accepted"] == [opening["event_id"]]
    assert body["rejected"] == [{"event_id": transfer["event_id"], "codes": ["malformed_payload"]}]
    assert body["duplicates"] == [] and body["skipped"] == []
    # And without waiting, every event is listed as queued under its own id
    later = client.post("/api/v1/ledger/events", json={"events": [transfer]}).json()
    assert [q["event_id"] for q in later["queued"]] == [transfer["event_id"]] and "accepted" not in later


def test_a_ledger_key_cannot_start_workflows_without_the_run_scope(api_server: ApiServer) -> None:
    info, token = key_service.create_key("e2e-ledger-only", ["ledger:write"])
    try:
        answer = httpx.post(api_server.url + "/api/v1/agent/run", json=REQUEST, headers={"X-API-Key": token})
        assert answer.status_code == 403 and answer.json()["required_scope"] == "run"
    finally:
        key_service.revoke_key(info.key_id)


def test_the_http_client_submits_events_and_pings_with_a_key(api_server: ApiServer) -> None:
    from gateway.client import FleetHttpClient

    info, token = key_service.create_key("e2e-http-client", ["run", "ledger:write"])
    events = setup(f"cli{uuid.uuid4().hex[:6]}")[:1]
    try:
        with FleetHttpClient(api_server.url, api_key=token) as fleet:
            answer = fleet.submit_ledger_events(events, wait=True, idempotency_key=events[0]["event_id"])
            assert answer["results"][0]["status"] == "accepted"
            assert fleet.ledger_result(events[0]["event_id"])["status"] == "accepted"
            assert fleet.ping("reports")["answer"]["queue"] == "reports"
    finally:
        key_service.revoke_key(info.key_id)


def test_a_report_is_made_on_demand_then_read_as_latest_and_by_date(api_server: ApiServer) -> None:
    info, token = key_service.create_key("e2e-reports", ["admin"])
    try:
        with httpx.Client(base_url=api_server.url, headers={"X-API-Key": token}, timeout=180) as http:
            # When an operator makes today's report through the API
            made = http.post("/api/v1/reports/run", json={})
            assert made.status_code == 201, made.text
            # Then it is the latest report, and readable by its date
            latest = http.get("/api/v1/reports/latest")
            assert latest.status_code == 200, latest.text
            report = latest.json()
            assert report["markdown"] and report["health"]
            by_date = http.get(f"/api/v1/reports/{report['date']}")
            assert by_date.status_code == 200 and by_date.json()["date"] == report["date"]
            missing = http.get("/api/v1/reports/2000-01-02")
            assert missing.status_code == 404 and missing.json()["code"] == "report_not_found"
            assert http.get("/api/v1/reports/not-a-date").status_code == 422
            briefing = http.get("/api/v1/briefing", params={"hours": 2})
            assert briefing.status_code == 200 and briefing.json()["markdown"]
    finally:
        key_service.revoke_key(info.key_id)


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_browser_reads_a_report_as_a_page_with_its_chart_under_the_same_key(api_server: ApiServer) -> None:
    info, token = key_service.create_key("e2e-report-page", ["admin"])
    try:
        with httpx.Client(base_url=api_server.url, headers={"X-API-Key": token}, timeout=180) as http:
            # Given a report made through the API
            made = http.post("/api/v1/reports/run", json={})
            assert made.status_code == 201, made.text
            day = made.json()["date"]
            # When a browser asks for it (its Accept header prefers HTML)
            page = http.get(f"/api/v1/reports/{day}", headers={"Accept": BROWSER_ACCEPT})
            # Then it gets a page: headings, tables and the chart inlined, not raw Markdown
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html") and "Accept" in page.headers["vary"]
            assert f"<h1>Fleet status report: {day}</h1>" in page.text and "<table>" in page.text
            assert '<img src="data:image/png;base64,' in page.text and "**" not in page.text
            latest = http.get("/api/v1/reports/latest", headers={"Accept": "text/html"})
            assert latest.status_code == 200 and latest.headers["content-type"].startswith("text/html")
            # And a client that asks for JSON, or for anything, still gets the JSON record
            for accept in ("application/json", "*/*", "text/html;q=0.5, application/json"):
                record = http.get(f"/api/v1/reports/{day}", headers={"Accept": accept})
                assert record.headers["content-type"] == "application/json" and record.json()["date"] == day
        # And the page needs the same key as the JSON
        anonymous = httpx.get(f"{api_server.url}/api/v1/reports/{day}", headers={"Accept": BROWSER_ACCEPT})
        assert anonymous.status_code == 401
    finally:
        key_service.revoke_key(info.key_id)


def test_making_a_report_needs_the_admin_scope(client: httpx.Client) -> None:
    answer = client.post("/api/v1/reports/run", json={})
    assert answer.status_code == 403 and answer.json()["required_scope"] == "admin"


def test_a_repeated_run_with_the_same_idempotency_key_starts_one_run(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": f"run-{uuid.uuid4()}"}
    first = client.post("/api/v1/agent/run", json=REQUEST, headers=headers)
    again = client.post("/api/v1/agent/run", json=REQUEST, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.headers["Idempotent-Replayed"] == "true"

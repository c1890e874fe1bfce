"""Operating the fleet over the v1 API: the run history, bulk cancel, dead letters, failed tasks, ledger lookups."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ApiServer
from tests.e2e.test_api_security import bearer, create_key, revoke
from tests.ledger_cases import event
from tests.support import WorkerProcess, wait_for
from worker.agents.models import AgentRun
from worker.db import session_scope
from worker.models.core import AuditEvent, DeadLetter

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ops_keys(api_server: ApiServer) -> Iterator[dict[str, dict[str, Any]]]:
    """An operator key and two run keys; revoked afterwards."""
    made = {
        "operator": create_key("--name", "ops-operator", "--scope", "operator"),
        "a": create_key("--name", "ops-a", "--scope", "run"),
        "b": create_key("--name", "ops-b", "--scope", "run"),
    }
    yield made
    for key in made.values():
        revoke(key)


def _seed_runs(tag: str, owners: list[str]) -> list[str]:
    """Runs stored as a worker stores them, one a minute apart (newest last), with statuses in turn."""
    statuses = ["failed", "succeeded", "pending", "awaiting_approval", "failed"]
    base = datetime.now(UTC) - timedelta(hours=2)
    ids = []
    with session_scope() as session:
        for index, owner in enumerate(owners):
            run_id = f"{tag}-{index:02d}"
            at = base + timedelta(minutes=index)
            status = statuses[index % len(statuses)]
            session.add(AgentRun(
                run_id=run_id, status=status, owner=owner, queue="agents", priority=5,
                request={"input": f"compute {index}+1 for {tag}", "mode": "planner" if index % 2 else "plan_only",
                         "profile": "local", "options": {}},
                error=f"boom {tag} {index}" if status == "failed" else None,
                timeline={status: at.isoformat()}, created_at=at, updated_at=at,
            ))  # fmt: skip
            ids.append(run_id)
    return ids


def _get(server: ApiServer, key: dict[str, Any], path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params, headers=bearer(key), timeout=30)


def _post(server: ApiServer, key: dict[str, Any], path: str, body: Any = None) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=bearer(key), timeout=30)


def test_the_run_history_is_searched_newest_first_and_paged_by_a_cursor(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]]
) -> None:
    # Given ten runs of two keys, a minute apart
    tag = f"hist-{uuid.uuid4().hex[:6]}"
    a, b = ops_keys["a"]["key_id"], ops_keys["b"]["key_id"]
    ids = _seed_runs(tag, [a, b] * 5)
    # When an operator pages through the runs whose input holds the tag, three at a time
    seen, cursor = [], None
    while True:
        params = {"text": tag, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = _get(api_server, ops_keys["operator"], "/api/v1/runs", **params)
        assert page.status_code == 200, page.text
        seen += [r["run_id"] for r in page.json()["runs"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # Then every run came once, newest first
    assert seen == ids[::-1]
    # And filters narrow it: failed runs of key A whose error says so, in the last three hours
    since = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    found = _get(api_server, ops_keys["operator"], "/api/v1/runs", text=tag, status="failed", api_key=a,
                 error="boom", since=since).json()["runs"]  # fmt: skip
    assert [r["run_id"] for r in found] == [i for n, i in enumerate(ids) if n % 5 in (0, 4) and n % 2 == 0][::-1]
    assert all(r["status"] == "failed" and r["owner"] == a for r in found)
    assert {r["mode"] for r in _get(api_server, ops_keys["operator"], "/api/v1/runs", text=tag,
                                   mode="plan_only").json()["runs"]} == {"plan_only"}  # fmt: skip
    # And a key without `operator` sees only its own runs, whatever key it names
    own = _get(api_server, ops_keys["b"], "/api/v1/runs", text=tag, api_key=a, limit=50).json()["runs"]
    assert own and {r["owner"] for r in own} == {b}
    # And a forged cursor is refused with its reason
    forged = _get(api_server, ops_keys["operator"], "/api/v1/runs", cursor="not-a-cursor")
    assert forged.status_code == 422 and forged.json()["code"] == "invalid_cursor"


def test_bulk_cancel_counts_first_and_refuses_a_changed_match(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]]
) -> None:
    # Given ten runs, four of them still active (pending or awaiting approval)
    tag = f"bulk-{uuid.uuid4().hex[:6]}"
    ids = _seed_runs(tag, [ops_keys["a"]["key_id"]] * 10)
    # When an operator asks for a dry run
    dry = _post(api_server, ops_keys["operator"], "/api/v1/runs/cancel", {"text": tag})
    # Then it counts the active runs and cancels nothing
    assert dry.status_code == 200 and dry.json() == {"dry_run": True, "matched": 4, "cancelled": [],
                                                     "already_ended": []}  # fmt: skip
    # When the cancel names another count, nothing happens
    wrong = _post(
        api_server, ops_keys["operator"], "/api/v1/runs/cancel", {"text": tag, "dry_run": False, "expected": 3}
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "count_changed"
    # When it names the dry run's count, those four are cancelled, and only they
    done = _post(
        api_server, ops_keys["operator"], "/api/v1/runs/cancel", {"text": tag, "dry_run": False, "expected": 4}
    )
    assert done.status_code == 200, done.text
    assert sorted(done.json()["cancelled"]) == [i for n, i in enumerate(ids) if n % 5 in (2, 3)]
    statuses = {
        r["run_id"]: r["status"]
        for r in _get(api_server, ops_keys["operator"], "/api/v1/runs", text=tag).json()["runs"]
    }
    assert sorted(r for r, s in statuses.items() if s == "cancelled") == sorted(done.json()["cancelled"])
    # And a run key may not cancel in bulk
    assert _post(api_server, ops_keys["a"], "/api/v1/runs/cancel", {"text": tag}).status_code == 403


def _succeeded(app: Any, task_id: str) -> dict[str, Any] | None:
    """The task's stored result once it is SUCCESS (read afresh: the unknown task stored FAILURE first)."""
    meta = app.backend.get_task_meta(task_id, cache=False)
    return meta if meta.get("status") == "SUCCESS" else None


def _dead_letter_of(task_id: str) -> dict[str, Any] | None:
    with session_scope() as session:
        row = session.query(DeadLetter).filter(DeadLetter.task_id == task_id).first()
        return {"id": row.id, "reason": row.reason} if row else None


def _audited(action: str, subject: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        rows = session.query(AuditEvent).filter(AuditEvent.action == action, AuditEvent.subject == subject).all()
        return [{"actor": r.actor, **r.details} for r in rows]


def test_a_dead_letter_is_shown_masked_and_requeued_once_a_worker_knows_its_task(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]], celery_app: Any
) -> None:
    queue = f"ops-{uuid.uuid4().hex[:6]}"
    operator = ops_keys["operator"]
    # Given a message for a task its worker does not know (a deploy half done), with a secret in its arguments
    old = WorkerProcess(queues=queue, name=f"old-{queue}").start(celery_app)
    try:
        sent = celery_app.send_task("tests.greet", args=["ops"], kwargs={"password": "hunter2-secret"}, queue=queue)
        letter = wait_for(lambda: _dead_letter_of(sent.id), timeout=60, what="the unknown task's dead letter")
        sent.get(timeout=60, propagate=False)  # settled: a result left pending is unsubscribed when collected
    finally:
        old.stop()
    assert letter["reason"] == "unknown_task"
    # When an operator lists the unknown tasks and opens this one
    listed = _get(api_server, operator, "/api/v1/dead-letters", reason="unknown_task", queue=queue).json()
    assert [d["task_id"] for d in listed["dead_letters"]] == [sent.id] and listed["dead_letters"][0]["requeueable"]
    shown = _get(api_server, operator, f"/api/v1/dead-letters/{letter['id']}").json()
    # Then the raw message is there, its secret masked
    assert "tests.greet" in shown["raw"] and "hunter2-secret" not in shown["raw"] and "***" in shown["raw"]
    # When a worker that knows the task is up and the operator requeues after a dry run
    new = WorkerProcess(queues=queue, name=f"new-{queue}", extra=["-I", "tests.requeue_tasks"]).start(celery_app)
    try:
        dry = _post(api_server, operator, "/api/v1/dead-letters/requeue", {"queue": queue})
        assert dry.json() == {"dry_run": True, "matched": 1, "requeued": []}
        done = _post(api_server, operator, "/api/v1/dead-letters/requeue",
                     {"queue": queue, "dry_run": False, "expected": 1})  # fmt: skip
        assert done.status_code == 200 and done.json()["requeued"] == [letter["id"]], done.text
        # Then the task runs, and the dead letter is gone, the requeue audited with who did it
        meta = wait_for(lambda: _succeeded(celery_app, sent.id), timeout=60, what="the requeued task to run")
        assert meta["result"] == "hello ops"
    finally:
        new.stop()
    assert _get(api_server, operator, f"/api/v1/dead-letters/{letter['id']}").status_code == 404
    audited = [a for a in _audited("dead_letter_requeued", str(letter["id"])) if a["task_id"] == sent.id]
    assert [a["actor"] for a in audited] == [f"key:{operator['key_id']}"]


def test_junk_is_not_requeued_and_a_discard_keeps_its_reason(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]]
) -> None:
    from worker.dead_letters import record

    operator = ops_keys["operator"]
    # Given bytes that are no message, kept as popped
    task_id = f"junk-{uuid.uuid4().hex[:6]}"
    record(
        "not_json",
        "ValueError: not JSON",
        "",
        task_id,
        "agents",
        b"token=abc123 {",
        source="agents",
        raw=b"token=abc123 {",
    )
    letter = wait_for(lambda: _dead_letter_of(task_id), what="the junk's dead letter")
    # When an operator tries to requeue it, it is refused with the reason
    refused = _post(api_server, operator, f"/api/v1/dead-letters/{letter['id']}/requeue")
    assert refused.status_code == 409 and refused.json()["code"] == "not_requeueable"
    assert "abc123" not in _get(api_server, operator, f"/api/v1/dead-letters/{letter['id']}").text
    # When it is discarded without a reason, that is refused; with one, it is gone and the reason audited
    assert _post(api_server, operator, f"/api/v1/dead-letters/{letter['id']}/discard", {}).status_code == 422
    gone = _post(api_server, operator, f"/api/v1/dead-letters/{letter['id']}/discard", {"reason": "a test's junk"})
    assert gone.status_code == 200
    assert _dead_letter_of(task_id) is None
    assert _audited("dead_letter_discarded", str(letter["id"]))[0]["why"] == "a test's junk"
    # And a run key sees no dead letters
    assert _get(api_server, ops_keys["a"], "/api/v1/dead-letters").status_code == 403


def test_a_failed_task_is_listed_and_retried(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]], celery_app: Any
) -> None:
    operator = ops_keys["operator"]
    # Given a task that ended FAILURE
    reason = f"ops-{uuid.uuid4().hex[:6]}"
    sent = celery_app.send_task("fleet.fail", kwargs={"reason": reason}, queue="agents", priority=5)
    sent.get(timeout=60, propagate=False)
    assert sent.state == "FAILURE"
    # When an operator lists failed tasks
    listed = _get(api_server, operator, "/api/v1/failed-tasks", name="fleet.fail", limit=500).json()
    mine = next(t for t in listed if t["task_id"] == sent.id)
    assert reason in mine["exception"] and mine["retried_as"] is None
    # And retries it
    retried = _post(api_server, operator, f"/api/v1/failed-tasks/{sent.id}/retry")
    assert retried.status_code == 200, retried.text
    new_id = retried.json()["new_task_id"]
    # Then the same task ran again under a new id (and failed again, as fleet.fail does), the retry listed
    again = wait_for(lambda: celery_app.backend.get_task_meta(new_id, cache=False), timeout=60, what="the retry")
    wait_for(lambda: celery_app.backend.get_task_meta(new_id, cache=False)["status"] == "FAILURE", timeout=60,
             what="the retry to run")  # fmt: skip
    assert reason in str(celery_app.backend.get_task_meta(new_id, cache=False)["result"])
    assert again is not None
    listed = _get(api_server, operator, "/api/v1/failed-tasks", name="fleet.fail", limit=500).json()
    assert next(t for t in listed if t["task_id"] == sent.id)["retried_as"] == new_id
    assert _audited("failed_task_retried", sent.id)[0]["new_task_id"] == new_id
    # And an id that never failed is 404
    assert _post(api_server, operator, f"/api/v1/failed-tasks/{uuid.uuid4()}/retry").status_code == 404


def test_ledger_lookups_by_account_correlation_and_rejection_code(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]]
) -> None:
    from tests.e2e.test_api_security import create_key as make

    writer = make("--name", "ops-ledger", "--scope", "ledger:write")
    try:
        p = f"lk{uuid.uuid4().hex[:6]}"
        corr = f"corr-{p}"
        events = [
            event(f"{p}-1", "account_opened", {"account": f"{p}-a", "currency": "EUR", "opening_balance": "100"}, at=1,
                  correlation_id=corr),
            event(f"{p}-2", "account_opened", {"account": f"{p}-b", "currency": "EUR"}, at=2, correlation_id=corr),
            event(f"{p}-3", "transaction_created", {"transaction_id": f"{p}-t1", "sender": f"{p}-a",
                  "receiver": f"{p}-b", "amount": "30.00", "currency": "EUR"}, at=3, correlation_id=corr),
            event(f"{p}-4", "transaction_created", {"transaction_id": f"{p}-t2", "sender": f"{p}-a",
                  "receiver": f"{p}-b", "amount": "900.00", "currency": "EUR"}, at=4),
        ]  # fmt: skip
        started = datetime.now(UTC) - timedelta(seconds=5)
        for one in events:  # in order: each waits for the one before
            sent = _post(api_server, writer, "/api/v1/ledger/events?wait=true", {"events": [one]})
            assert sent.status_code in (200, 202) and sent.json()["results"], sent.text
        reader = ops_keys["a"]
        # Then the account shows its shadow balance and its last events, newest first, before and after
        view = _get(api_server, reader, f"/api/v1/ledger/accounts/{p}-a", last=10).json()
        assert view["balance"] in ("70", "70.00") and [e["event_id"] for e in view["events"]] == [
            f"{p}-4",
            f"{p}-3",
            f"{p}-1",
        ]
        assert view["events"][0]["status"] == "rejected" and view["events"][1]["before"] in ("100", "100.00")
        # And the correlation id finds its three results
        found = _get(api_server, reader, f"/api/v1/ledger/correlations/{corr}").json()
        assert sorted(r["event_id"] for r in found) == [f"{p}-1", f"{p}-2", f"{p}-3"]
        # And the rejection counts by code include the overdraft
        codes = _get(api_server, reader, "/api/v1/ledger/rejections", since=started.isoformat()).json()["codes"]
        assert sum(codes.values()) >= 1 and view["events"][0]["codes"][0] in codes
        assert _get(api_server, reader, f"/api/v1/ledger/accounts/{p}-none").status_code == 404
        # And the latest rejected results list the overdraft first
        latest = _get(api_server, reader, "/api/v1/ledger/recent", status="rejected", limit=5).json()
        assert latest[0]["event_id"] == f"{p}-4" and latest[0]["codes"] == view["events"][0]["codes"]
    finally:
        revoke(writer)


hostile_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
filters = st.fixed_dictionaries(
    {},
    optional={
        "status": st.lists(st.sampled_from(["failed", "pending", "succeeded", "nope"]), max_size=3),
        "since": st.datetimes(
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
        ).map(datetime.isoformat),
        "text": hostile_text,
        "error": hostile_text,
        "api_key": hostile_text,
        "mode": st.sampled_from(["planner", "plan_only", "x"]),
        "reason": hostile_text,
        "queue": hostile_text,
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=filters)
def test_hostile_filters_of_the_bulk_actions_are_counted_or_refused_never_a_server_error(
    api_server: ApiServer, ops_keys: dict[str, dict[str, Any]], body: dict[str, Any]
) -> None:
    # Given any filter a client may send to the dry runs (only the dry runs: the real ones act on the session's data)
    runs = {k: v for k, v in body.items() if k not in ("reason", "queue")}
    letters = {k: v for k, v in body.items() if k in ("reason", "queue", "since")}
    for path, sent in (("/api/v1/runs/cancel", runs), ("/api/v1/dead-letters/requeue", letters)):
        answer = _post(api_server, ops_keys["operator"], path, sent)
        # Then it is counted (200) or refused with the reason (422), never a 5xx
        assert answer.status_code in (200, 422), (path, sent, answer.text)
        assert answer.status_code == 422 or answer.json()["dry_run"] is True

"""Approvals over the API: another key approves the plan it saw, bound to its digest, with a ledger preview."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.e2e.conftest import ApiServer
from tests.e2e.test_api_security import bearer, create_key, revoke
from tests.ledger_cases import event, ts
from tests.support import wait_for
from worker.agents.models import AgentStage
from worker.db import session_scope
from worker.models.core import AuditEvent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def people(api_server: ApiServer) -> Iterator[dict[str, dict[str, Any]]]:
    """A submitter (run and ledger:write), an approver (operator), a ledger writer; revoked afterwards."""
    made = {
        "submitter": create_key("--name", "ap-submitter", "--scope", "run", "--scope", "ledger:write"),
        "approver": create_key("--name", "ap-approver", "--scope", "operator"),
        "writer": create_key("--name", "ap-writer", "--scope", "ledger:write"),
    }
    yield made
    for key in made.values():
        revoke(key)


def _call(server: ApiServer, method: str, key: dict[str, Any], path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=bearer(key), timeout=30)


def _open_accounts(server: ApiServer, writer: dict[str, Any], p: str) -> None:
    for one in (
        event(f"{p}-o1", "account_opened", {"account": f"{p}-a", "currency": "EUR", "opening_balance": "100.00"}, at=1),
        event(f"{p}-o2", "account_opened", {"account": f"{p}-b", "currency": "EUR"}, at=2),
    ):
        answer = _call(server, "POST", writer, "/api/v1/ledger/events?wait=true", {"events": [one]})
        assert answer.json()["accepted"] == [one["event_id"]], answer.text


def _held_transfer(server: ApiServer, submitter: dict[str, Any], p: str, amount: str) -> str:
    transfer = {"event_type": "transaction_created", "timestamp": ts(10),
                "data": {"transaction_id": f"{p}-t1", "sender": f"{p}-a", "receiver": f"{p}-b", "amount": amount,
                         "currency": "EUR"}}  # fmt: skip
    body = {"input": f"validate this event {json.dumps(transfer)}", "options": {"require_approval": True}}
    run_id = str(_call(server, "POST", submitter, "/api/v1/agent/run", body).json()["run_id"])
    wait_for(lambda: _call(server, "GET", submitter, f"/api/v1/agent/status/{run_id}").json().get("status")
             == "awaiting_approval", timeout=90, what="the run to be held")  # fmt: skip
    return run_id


def _balance(server: ApiServer, key: dict[str, Any], account: str) -> str:
    return str(_call(server, "GET", key, f"/api/v1/ledger/accounts/{account}").json()["balance"])


def test_a_held_run_is_approved_by_another_key_on_the_plan_it_saw_and_applied_once(
    api_server: ApiServer, people: dict[str, dict[str, Any]]
) -> None:
    p = f"ap{uuid.uuid4().hex[:6]}"
    submitter, approver = people["submitter"], people["approver"]
    _open_accounts(api_server, people["writer"], p)
    # Given a transfer of 30.00 from a (100.00) to b, held for approval
    run_id = _held_transfer(api_server, submitter, p, "30.00")
    assert run_id in [r["run_id"] for r in _call(api_server, "GET", approver, "/api/v1/approvals").json()["runs"]]
    # When the approver opens it
    shown = _call(api_server, "GET", approver, f"/api/v1/approvals/{run_id}").json()
    # Then it shows the plan's digest, why it was held, when the hold expires, and the ledger effects, unapplied
    canonical = json.dumps(shown["plan"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert shown["plan_digest"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert shown["reasons"] and shown["expiry_action"] == "reject"
    [effect] = shown["ledger_preview"]
    assert effect["status"] == "accepted" and effect["codes"] == []
    assert (effect["before"][f"{p}-a"], effect["after"][f"{p}-a"]) == ("100.00", "70.00")
    assert _balance(api_server, approver, f"{p}-a") == "100.00"
    # When the submitting key tries to approve its own run, on either route, it is refused
    own = _call(
        api_server, "POST", submitter, f"/api/v1/approvals/{run_id}/approve", {"plan_digest": shown["plan_digest"]}
    )
    assert own.status_code == 403 and own.json()["code"] == "self_approval_forbidden"
    legacy = _call(api_server, "POST", submitter, f"/api/v1/agent/{run_id}/approve")
    assert legacy.status_code == 403 and legacy.json()["code"] == "self_approval_forbidden"
    # When the plan changes after it was shown (the amount becomes 90.00), the approval of the old digest is refused
    with session_scope() as session:
        stage = session.query(AgentStage).filter_by(run_id=run_id, stage="analyze").one()
        changed = json.loads(json.dumps(stage.output).replace('"30.00"', '"90.00"'))
        session.execute(update(AgentStage).where(AgentStage.id == stage.id).values(output=changed))
    stale = _call(
        api_server, "POST", approver, f"/api/v1/approvals/{run_id}/approve", {"plan_digest": shown["plan_digest"]}
    )
    assert stale.status_code == 409 and stale.json()["code"] == "plan_changed"
    # When the approver reviews the new plan and approves its digest
    again = _call(api_server, "GET", approver, f"/api/v1/approvals/{run_id}").json()
    assert again["plan_digest"] != shown["plan_digest"] and again["ledger_preview"][0]["after"][f"{p}-a"] == "10.00"
    approved = _call(
        api_server, "POST", approver, f"/api/v1/approvals/{run_id}/approve", {"plan_digest": again["plan_digest"]}
    )
    assert approved.status_code == 200, approved.text
    # Then the run finishes, the transfer applied once, and the decision is audited with its approver and digest
    wait_for(lambda: _call(api_server, "GET", submitter, f"/api/v1/agent/status/{run_id}").json()["status"]
             in {"succeeded", "failed", "rejected"}, timeout=90, what="the approved run to finish")  # fmt: skip
    assert _call(api_server, "GET", submitter, f"/api/v1/agent/status/{run_id}").json()["status"] == "succeeded"
    assert _balance(api_server, approver, f"{p}-a") == "10.00" and _balance(api_server, approver, f"{p}-b") == "90.00"
    with session_scope() as session:
        decisions = session.query(AuditEvent).filter_by(action="run_approved", subject=run_id).all()
        assert [(d.actor, d.details["plan_digest"]) for d in decisions] == [
            (f"key:{approver['key_id']}", again["plan_digest"])
        ]


def test_the_submitter_may_reject_its_own_held_run(api_server: ApiServer, people: dict[str, dict[str, Any]]) -> None:
    p = f"rj{uuid.uuid4().hex[:6]}"
    _open_accounts(api_server, people["writer"], p)
    run_id = _held_transfer(api_server, people["submitter"], p, "5.00")
    rejected = _call(api_server, "POST", people["submitter"], f"/api/v1/approvals/{run_id}/reject", {"reason": "typo"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert _balance(api_server, people["approver"], f"{p}-a") == "100.00"
    assert _call(api_server, "GET", people["approver"], f"/api/v1/approvals/{run_id}").status_code == 409

"""Approvals: a hold that nobody decides on expires by the sweep; a ledger preview changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from agents import runner
from agents.config import AgentsConfig
from agents.memory import MemoryCache, MemoryEvents, MemoryStore
from agents.models import WorkflowRequest
from agents.profiles import LocalProfile
from agents.replay import run_inline
from agents.tools import default_registry
from ledger.config import LedgerConfig
from ledger.quickrun import MemoryStore as LedgerMemory
from ledger.quickrun import preview, run
from tests.ledger_cases import event, setup


def _ports(**config: object) -> runner.Ports:
    return runner.Ports(store=MemoryStore(), events=MemoryEvents(), registry=default_registry(),
                        profiles=lambda _name: LocalProfile(), cache=MemoryCache(),
                        config=AgentsConfig.model_validate(config))  # fmt: skip


def _held(ports: runner.Ports, run_id: str) -> str:
    ports.store.create_run(run_id, WorkflowRequest(input="compute 1+1", options={"require_approval": True}), "agents")
    assert run_inline(run_id, ports).status == "awaiting_approval"
    return run_id


@pytest.mark.parametrize(("action", "ended"), [("reject", "rejected"), ("cancel", "cancelled")])
def test_a_hold_nobody_decided_on_ends_by_the_expiry_action_after_the_timeout(action: str, ended: str) -> None:
    # Given a run held for approval, with a one-hour approval timeout
    ports = _ports(approval_timeout_s=3600, approval_expiry_action=action)
    run_id = _held(ports, "held-1")
    # When the sweep looks before the hour is up, nothing happens
    assert runner.expire_holds(ports, datetime.now(UTC) + timedelta(minutes=59)) == []
    assert ports.store.get_run(run_id).status == "awaiting_approval"
    # When it looks after the hour, the run ends as the expiry action says, with the reason, and says so
    assert [r.run_id for r in runner.expire_holds(ports, datetime.now(UTC) + timedelta(minutes=61))] == [run_id]
    record = ports.store.get_run(run_id)
    assert record.status == ended and record.error == "approval expired: no decision within 3600 s"
    assert ports.events.events[-1][1] == {"type": "run_finished", "status": ended, "error": record.error}  # type: ignore[attr-defined]
    # And a second sweep does nothing more
    assert runner.expire_holds(ports, datetime.now(UTC) + timedelta(days=2)) == []


def test_the_default_hold_lasts_a_day_and_is_rejected_then() -> None:
    config = AgentsConfig()
    assert (config.approval_timeout_s, config.approval_expiry_action, config.approval_forbid_self) == (
        86_400, "reject", True,
    )  # fmt: skip


def test_a_ledger_preview_shows_balances_and_codes_and_applies_nothing() -> None:
    # Given a shadow ledger with accounts a (500 EUR) and b
    store, config, now = LedgerMemory(), LedgerConfig(), datetime.now(UTC)
    run(setup("pv"), store, config, now)
    before = dict(store.ledger.accounts)
    transfer = {"transaction_id": "pv-t9", "sender": "pv-a", "receiver": "pv-b", "amount": "100.00", "currency": "EUR"}
    too_much = {**transfer, "transaction_id": "pv-t10", "amount": "100000.00"}
    # When two transfers are previewed in order
    first, second = preview(
        [event("pv-9", "transaction_created", transfer, at=70), event("pv-10", "transaction_created", too_much, at=71)],
        store, config, now,
    )  # fmt: skip
    # Then the first is accepted with its balances before and after, the second rejected with its rule code
    assert first["result"]["status"] == "accepted"
    assert (first["before"]["pv-a"], first["after"]["pv-a"]) == ("490.00", "390.00")
    assert second["result"]["status"] == "rejected" and second["result"]["codes"]
    # And nothing was applied: the same transfer processed for real is accepted from the same balances
    assert store.ledger.accounts == before and "pv-9" not in store.ledger.events
    [real] = run([event("pv-9", "transaction_created", transfer, at=70)], store, config, now)
    assert real["status"] == "accepted"


def test_the_executor_runs_only_the_plan_whose_digest_was_approved() -> None:
    from agents import actions
    from agents.runner import plan_of

    # Given two held runs, each approved on the digest of its plan
    ports = _ports()
    kept, changed = _held(ports, "kept"), _held(ports, "changed")
    for run_id in (kept, changed):
        actions.approve(run_id, ports, "key:approver", actions.plan_digest(plan_of(ports.store.get_run(run_id))))
    # When one plan changes after the approval (its expression is now another)
    stage = ports.store.get_run(changed).stage("analyze")
    assert stage is not None
    tampered = json.loads(json.dumps(stage.output).replace("1+1", "2+2"))
    ports.store.save_stage(changed, stage.model_copy(update={"output": tampered}))
    # Then the unchanged one runs, and the changed one fails before any subtask runs, saying why
    assert run_inline(kept, ports).status == "succeeded"
    record = run_inline(changed, ports)
    assert record.status == "failed" and "the plan changed after it was approved" in (record.error or "")
    assert record.subtasks == ()

"""Approvals a bank would accept: the held run's plan with its SHA-256 digest and a preview of its ledger effects;
a decision binds the digest it was taken on, the submitting key cannot approve its own run, every decision is
audited with its approver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agents import actions
from agents.errors import InvalidTransition
from agents.models import RunRecord
from agents.runner import plan_of, verdict_of
from gateway.keys import ANONYMOUS, Principal
from gateway.services import agents as agent_service
from gateway.services.errors import PlanChanged, SelfApproval
from worker import audit
from worker.agents.ports import build_ports
from worker.db import session_scope

LEDGER_TOOL = "ledger.quick_run"


def plan_digest(record: RunRecord) -> str:
    """The SHA-256 of the run's plan (agents.actions.plan_digest): what an approver sees and signs."""
    return actions.plan_digest(plan_of(record))


def ledger_preview(record: RunRecord) -> list[dict[str, Any]]:
    """The plan's ledger subtasks evaluated in order against the shadow ledger, nothing applied: per subtask the
    result (status, rule codes, anomaly scores) and the balances before and after."""
    subtasks = [s for s in plan_of(record).subtasks if s.tool == LEDGER_TOOL and isinstance(s.args.get("event"), dict)]
    if not subtasks:
        return []
    from ledger.quickrun import preview
    from worker.ledger.service import ledger_config, ledger_store

    # The ledger's own settings and store, as its worker builds them, without loading its tasks.
    config, store = ledger_config(), ledger_store()

    events = []
    for subtask in subtasks:
        event = dict(subtask.args["event"])
        event.setdefault("event_id", f"preview-{record.run_id}-{subtask.id}")
        event.setdefault("api_version", "v1")
        events.append(event)
    outcomes = preview(events, store, config, datetime.now(UTC))
    return [
        {"subtask_id": s.id, "event_id": o["result"].get("event_id"), "status": o["result"].get("status"),
         "codes": o["result"].get("codes", []), "anomalies": o["result"].get("anomalies", []),
         "before": o["before"], "after": o["after"]}
        for s, o in zip(subtasks, outcomes, strict=True)
    ]  # fmt: skip


def view(run_id: str) -> dict[str, Any]:
    """What an approver decides on: the request, the plan and its digest, the gate's reasons, the ledger preview,
    when the hold expires."""
    ports = build_ports()
    record = ports.store.get_run(run_id)
    if record.status != "awaiting_approval":
        raise InvalidTransition(f"run {run_id} is {record.status}, not awaiting_approval")
    held_at = record.timeline.get("awaiting_approval") or record.updated_at or datetime.now(UTC)
    return {
        "run_id": run_id,
        "status": record.status,
        "owner": record.owner,
        "input": record.request.input,
        "plan": plan_of(record).model_dump(mode="json"),
        "plan_digest": plan_digest(record),
        "reasons": list(verdict_of(record).reasons),
        "held_since": held_at,
        "expires_at": held_at + timedelta(seconds=ports.config.approval_timeout_s),
        "expiry_action": ports.config.approval_expiry_action,
        "ledger_preview": ledger_preview(record),
    }


def _check(record: RunRecord, who: Principal, digest: str | None, approving: bool) -> None:
    if approving and build_ports().config.approval_forbid_self and who is not ANONYMOUS and record.owner == who.key_id:
        raise SelfApproval(f"key {who.key_id} submitted run {record.run_id}: another key must approve it")
    if digest is not None and record.status == "awaiting_approval" and digest != plan_digest(record):
        raise PlanChanged(f"run {record.run_id}'s plan is not the one with digest {digest[:12]}…: review it again")


def _audit(run_id: str, action: str, who: Principal, digest: str | None, reason: str = "") -> None:
    with session_scope() as session:
        audit.record(session, "agent", action, run_id, actor=f"key:{who.key_id}", approver=who.name,
                     plan_digest=digest, reason=reason)  # fmt: skip


def approve(run_id: str, who: Principal, digest: str | None) -> dict[str, Any]:
    """Release a held run, bound to the plan digest shown (None: the legacy route, which names no digest)."""
    record = build_ports().store.get_run(run_id)
    _check(record, who, digest, approving=True)
    # The digest travels with the release: the executor runs the plan only while it is still that one.
    signed = digest or (plan_digest(record) if record.stage("analyze") else None)
    approved = agent_service.approve(run_id, actor=f"key:{who.key_id}", digest=signed)
    _audit(run_id, "run_approved", who, signed)
    return approved


def reject(run_id: str, who: Principal, digest: str | None, reason: str = "") -> dict[str, Any]:
    """End a held run as rejected (its own submitter may: withdrawing needs no second pair of eyes)."""
    record = build_ports().store.get_run(run_id)
    _check(record, who, digest, approving=False)
    rejected = agent_service.reject(run_id, actor=f"key:{who.key_id}", reason=reason)
    _audit(run_id, "run_rejected_by_approver", who, digest, reason)
    return rejected

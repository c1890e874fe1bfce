"""What people do to a run: cancel it, approve or reject a held plan."""

from __future__ import annotations

import hashlib
import json

from agents.errors import InvalidTransition
from agents.models import RUN_STATUSES, TERMINAL_STATUSES, Plan, RunRecord
from agents.runner import Ports

ACTIVE = frozenset(RUN_STATUSES) - TERMINAL_STATUSES


def cancel(run_id: str, ports: Ports, actor: str = "operator") -> RunRecord:
    """Mark the run cancelled (partial results stay); InvalidTransition when it already ended."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "cancelled", ACTIVE, error=f"cancelled by {actor}", actor=actor):
        raise InvalidTransition(f"run {run_id} already ended as {record.status}")
    ports.events.publish(run_id, {"type": "run_finished", "status": "cancelled", "error": f"cancelled by {actor}"})
    return ports.store.get_run(run_id)


def plan_digest(plan: Plan) -> str:
    """The SHA-256 of the plan's canonical JSON (sorted keys, no spaces, UTF-8): what an approver signs."""
    canonical = json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def approve(run_id: str, ports: Ports, actor: str = "operator", digest: str | None = None) -> RunRecord:
    """Release a held plan to the executor, keeping the analyst's plan and the gate's verdict; the gate stage
    records who approved and the digest of the plan approved, which the executor checks before running it."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "gated", frozenset({"awaiting_approval"}), actor=actor):
        raise InvalidTransition(f"run {run_id} is {record.status}, not awaiting_approval")
    gate = record.stage("gate")
    if gate is not None:
        signed = {"approved_by": actor, **({"approved_plan_digest": digest} if digest else {})}
        ports.store.save_stage(run_id, gate.model_copy(update={"output": {**gate.output, **signed}}))
    ports.events.publish(run_id, {"type": "run_status", "status": "gated", "approved_by": actor})
    return ports.store.get_run(run_id)


def reject(run_id: str, ports: Ports, actor: str = "operator", reason: str = "") -> RunRecord:
    """End a held run as rejected."""
    record = ports.store.get_run(run_id)
    error = f"rejected by {actor}" + (f": {reason}" if reason else "")
    if not ports.store.transition(run_id, "rejected", frozenset({"awaiting_approval"}), error=error, actor=actor):
        raise InvalidTransition(f"run {run_id} is {record.status}, not awaiting_approval")
    ports.events.publish(run_id, {"type": "run_finished", "status": "rejected", "error": error})
    return ports.store.get_run(run_id)

"""What people do to a run: cancel it, approve or reject a held plan."""

from __future__ import annotations

from agents.errors import InvalidTransition
from agents.models import RUN_STATUSES, TERMINAL_STATUSES, RunRecord
from agents.runner import Ports

ACTIVE = frozenset(RUN_STATUSES) - TERMINAL_STATUSES


def cancel(run_id: str, ports: Ports, actor: str = "operator") -> RunRecord:
    """Mark the run cancelled (partial results stay); InvalidTransition when it already ended."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "cancelled", ACTIVE, error=f"cancelled by {actor}", actor=actor):
        raise InvalidTransition(f"run {run_id} already ended as {record.status}")
    ports.events.publish(run_id, {"type": "run_finished", "status": "cancelled", "error": f"cancelled by {actor}"})
    return ports.store.get_run(run_id)


def approve(run_id: str, ports: Ports, actor: str = "operator") -> RunRecord:
    """Release a held plan to the executor, keeping the analyst's plan and the gate's verdict."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "gated", frozenset({"awaiting_approval"}), actor=actor):
        raise InvalidTransition(f"run {run_id} is {record.status}, not awaiting_approval")
    gate = record.stage("gate")
    if gate is not None:
        ports.store.save_stage(run_id, gate.model_copy(update={"output": {**gate.output, "approved_by": actor}}))
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

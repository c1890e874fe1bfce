"""A failed run resumed from its failed stage (or a named one), or run again as a new run linked to the old.

Resuming keeps what succeeded: the plan, the verdict and every succeeded subtask's result. A side effect already
applied is never applied again: a succeeded subtask returns its stored result, and a side-effecting call is
keyed (agent_idempotency_keys) so a finished call returns its recorded output instead of running again.
"""

from __future__ import annotations

from typing import Any

from agents.models import RunRecord, WorkflowRequest
from agents.runner import plan_of
from gateway.services import agents as agent_service
from gateway.services.errors import NotResumable
from worker import audit
from worker.agents import canvas
from worker.agents.ports import build_ports
from worker.application import get_app
from worker.db import session_scope

# Stages a failed run may resume from, and the status it takes to do so (the canvas sends what follows it).
RESUME_STATUS = {"analyze": "pending", "gate": "pending", "execute": "gated", "verify": "verifying"}
# The stage a run was in, by the status it failed from (when no stage record says failed).
STAGE_OF_STATUS = {"pending": "analyze", "analyzing": "analyze", "gated": "execute", "executing": "execute",
                   "verifying": "verify"}  # fmt: skip


def failed_stage(record: RunRecord) -> str:
    """The stage the run failed in: the first stage recorded failed, else the one its last status was in."""
    for stage in record.stages:
        if stage.status == "failed":
            return stage.stage
    before = [status for status in record.timeline if status != "failed"]
    return STAGE_OF_STATUS.get(before[-1] if before else "pending", "analyze")


def _check(record: RunRecord, stage: str) -> None:
    if record.status != "failed":
        raise NotResumable(f"run {record.run_id} is {record.status}; only a failed run resumes")
    if stage not in RESUME_STATUS:
        raise NotResumable(f"no stage {stage!r}; resume from one of {', '.join(RESUME_STATUS)}")
    if RESUME_STATUS[stage] == "pending" and record.subtasks:
        raise NotResumable(f"run {record.run_id}'s subtasks ran: planning again could repeat them; resume from "
                           "execute, or run it again as a new run")  # fmt: skip
    if stage in ("execute", "verify"):
        plan_of(record)  # InvalidTransition without a plan
        verdict = (record.stage("gate") or record.stages[0]).output.get("verdict", {})
        if verdict.get("decision") == "reject":
            raise NotResumable(f"run {record.run_id}'s plan was rejected by the gatekeeper")
    if stage == "verify" and any(r.status != "succeeded" for r in record.subtasks):
        raise NotResumable(f"run {record.run_id} has subtasks that did not succeed: resume from execute")


def resume(run_id: str, actor: str, from_stage: str | None = None) -> dict[str, Any]:
    """Send the failed run on from `from_stage` (default: the stage it failed in); the run record."""
    ports = build_ports()
    record = ports.store.get_run(run_id)
    stage = from_stage or failed_stage(record)
    _check(record, stage)
    to = RESUME_STATUS[stage]
    dropped = ports.store.drop_unfinished_results(run_id) if to == "gated" else []  # type: ignore[attr-defined]
    if not ports.store.transition(run_id, to, frozenset({"failed"}), error=None, actor=actor):
        raise NotResumable(f"run {run_id} is no longer failed")
    with session_scope() as session:
        audit.record(session, "agent", "run_resumed_by_operator", run_id, actor=actor, from_stage=stage,
                     rerun_subtasks=dropped)  # fmt: skip
    ports.events.publish(run_id, {"type": "run_status", "status": to, "resumed_from": stage, "by": actor})
    sig = canvas.pipeline(run_id, record.queue, record.priority, app=get_app(), status=to)
    ports.store.add_task_ids(run_id, list(canvas.task_ids(sig)))
    sig.apply_async()
    return agent_service.run_status(run_id)


def rerun(run_id: str, scopes: tuple[str, ...], owner: str | None, actor: str) -> dict[str, Any]:
    """The same request as a new run (`options.rerun_of` links it to the old); the new run's id."""
    record = build_ports().store.get_run(run_id)
    request = record.request.model_dump(mode="json")
    request["options"] = {**request.get("options", {}), "rerun_of": run_id}
    request["idempotency_key"] = None
    new_id = agent_service.submit(WorkflowRequest.model_validate(request), scopes, owner=owner)
    with session_scope() as session:
        audit.record(session, "agent", "run_rerun", run_id, actor=actor, new_run_id=new_id)
    return {"run_id": new_id, "rerun_of": run_id, "status": "pending"}

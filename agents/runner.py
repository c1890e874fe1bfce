"""The four stages over the shared run context: each checks the run's state first, records itself, publishes progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agents import executor, gatekeeper, graph, verifier
from agents.config import AgentsConfig
from agents.conversation import Context, bound
from agents.errors import AgentError, InvalidTransition
from agents.models import TERMINAL_STATUSES, Plan, RunRecord, StageOutput, Usage, Verdict
from agents.ports import EventSink, RunStore, ToolCache
from agents.profiles import Profile
from agents.tools import Registry, ToolContext

# Statuses a run passes through while workers move it on (not resting: neither held nor finished).
IN_FLIGHT = frozenset({"pending", "analyzing", "gated", "executing", "verifying"})
IN_EXECUTION = frozenset({"executing", "verifying"})


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


@dataclass
class Ports:
    """Everything the stages use besides the run id."""

    store: RunStore
    events: EventSink
    registry: Registry
    profiles: Callable[[str], Profile]
    config: AgentsConfig = field(default_factory=AgentsConfig)
    context: ToolContext = field(default_factory=ToolContext)
    cache: ToolCache | None = None


def plan_of(record: RunRecord) -> Plan:
    """The plan the analyst stored for the run."""
    stage = record.stage("analyze")
    if stage is None or "plan" not in stage.output:
        raise InvalidTransition(f"run {record.run_id} has no plan yet")
    return Plan.model_validate(stage.output["plan"])


def verdict_of(record: RunRecord) -> Verdict:
    """The gatekeeper's verdict for the run."""
    stage = record.stage("gate")
    if stage is None or "verdict" not in stage.output:
        raise InvalidTransition(f"run {record.run_id} has no verdict yet")
    return Verdict.model_validate(stage.output["verdict"])


@contextmanager
def _stage(ports: Ports, run_id: str, name: str, task_id: str | None) -> Iterator[dict[str, Any]]:
    """Time a stage, publish its start and end, and save its record with what the block put in `out`."""
    started_at, started = utcnow(), time.perf_counter()
    ports.events.publish(run_id, {"type": "stage_started", "stage": name})
    out: dict[str, Any] = {"output": {}, "usage": Usage(), "status": "succeeded"}
    yield out
    duration = round((time.perf_counter() - started) * 1000, 3)
    stage = StageOutput(stage=name, status=out["status"], output=out["output"], started_at=started_at,
                        ended_at=utcnow(), duration_ms=duration, usage=out["usage"], task_id=task_id)  # fmt: skip
    ports.store.save_stage(run_id, stage)
    ports.events.publish(
        run_id, {"type": "stage_finished", "stage": name, "status": out["status"], "duration_ms": duration}
    )


def _finish(ports: Ports, run_id: str, to: str, allowed: set[str], **fields: Any) -> None:
    if ports.store.transition(run_id, to, frozenset(allowed), **fields):
        ports.events.publish(run_id, {"type": "run_finished" if to in TERMINAL_STATUSES else "run_status", "status": to,
                                      **({"error": fields["error"]} if fields.get("error") else {})})  # fmt: skip


def report(run_id: str, stage: str, status: str, output: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """What a stage task returns: the run's status after it, and the stage's output (None when it did nothing)."""
    return {"run_id": run_id, "stage": stage, "status": status, "output": output, **extra}


def conversation_context(ports: Ports, record: RunRecord) -> Context | None:
    """The earlier turns of the run's conversation, bounded by `conversation_tokens`; None outside one."""
    conversation = record.request.conversation_id
    if conversation is None:
        return None
    earlier = ports.store.conversation_turns(conversation, record.created_at or utcnow())
    return bound([t for t in earlier if t.run_id != record.run_id], ports.config.conversation_tokens)


def analyze(run_id: str, ports: Ports, task_id: str | None = None) -> dict[str, Any]:
    """Sena: plan the request (only from `pending`)."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "analyzing", frozenset({"pending"})):
        record = ports.store.get_run(run_id)
        # `analyzing` without a stored plan: a delivery of this stage died before storing it (or is still
        # planning): plan again, since the next stage is sent only by the delivery that stored a plan.
        if record.status != "analyzing" or record.stage("analyze") is not None:
            return report(run_id, "analyze", record.status)
    with _stage(ports, run_id, "analyze", task_id) as out:
        try:
            context = conversation_context(ports, record)
            plan, usage = ports.profiles(record.request.profile).plan(record.request, ports.registry, context)
        except AgentError as exc:
            out["status"], out["output"] = "failed", {"error": str(exc)}
        else:
            out["output"], out["usage"] = {"plan": plan.model_dump(mode="json")}, usage
            if context is not None:
                out["output"]["context"] = context.model_dump(mode="json")
            if usage.provider is not None:
                out["output"]["provider"] = {"answered": usage.provider, "failovers": list(usage.failovers)}
    if out["status"] == "failed":
        _finish(ports, run_id, "failed", {"analyzing"}, error=f"analyze: {out['output']['error']}")
        return report(run_id, "analyze", "failed", out["output"])
    return report(run_id, "analyze", "analyzing", out["output"], usage=out["usage"].model_dump())


def gate(run_id: str, ports: Ports, task_id: str | None = None) -> dict[str, Any]:
    """Lubit: approve, reject or hold the plan (only right after the analyst)."""
    record = ports.store.get_run(run_id)
    analyzed = record.stage("analyze")
    # Not after the analyst (a duplicate or late message): nothing to do; whoever stores the plan sends on.
    if record.status != "analyzing" or analyzed is None or "plan" not in analyzed.output:
        return report(run_id, "gate", record.status)
    plan, stored = plan_of(record), record.stage("gate")
    if stored is not None and "verdict" in stored.output:
        # A delivery stored its verdict and died before applying it: apply it, do not judge twice.
        output = stored.output
        verdict = Verdict.model_validate(output["verdict"])
    else:
        with _stage(ports, run_id, "gate", task_id) as out:
            verdict = gatekeeper.check(plan, record.request, ports.registry, ports.config, analyzed.usage)
            out["output"] = {"verdict": verdict.model_dump(mode="json")}
        output = out["output"]
    to, fields = _gate_outcome(verdict, plan, record)
    _finish(ports, run_id, to, {"analyzing"}, **fields)
    return report(run_id, "gate", to, output, mode=record.request.mode)


def _gate_outcome(verdict: Verdict, plan: Plan, record: RunRecord) -> tuple[str, dict[str, Any]]:
    """The run's next status after the verdict, and the fields to set with it."""
    fields: dict[str, Any] = {"priority": verdict.priority}
    if verdict.decision == "reject":
        return "rejected", {**fields, "error": "; ".join(verdict.reasons)}
    if verdict.decision == "needs_human":
        return "awaiting_approval", fields
    if record.request.mode == "plan_only":
        return "succeeded", {**fields, "output": {"plan": plan.model_dump(mode="json")}}
    return "gated", fields


def begin_execute(run_id: str, ports: Ports, task_id: str | None = None) -> tuple[RunRecord, list[list[str]] | None]:
    """GitCode starts: the dependency levels to run, or None when the run is not approved (or is over)."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "executing", frozenset({"gated"})):
        record = ports.store.get_run(run_id)
        if record.status != "executing":
            return record, None
        # Delivered again, or resumed by the sweep: run again what has no result yet (subtasks are idempotent);
        # with every result stored, nothing (verify follows).
        done = {r.subtask_id for r in record.subtasks}
        rest = [[s for s in level if s not in done] for level in graph.levels(plan_of(record).subtasks)]
        return record, [level for level in rest if level] or None
    plan = plan_of(record)
    signed = (record.stage("gate") or StageOutput(stage="gate", status="succeeded")).output.get("approved_plan_digest")
    if signed and _digest(plan) != signed:
        # The plan is not the one a person approved (changed after the decision): nothing of it runs.
        fail_run(run_id, f"execute: the plan changed after it was approved (approved {signed[:12]}…)", ports)
        return ports.store.get_run(run_id), None
    levels = graph.levels(plan.subtasks)
    ports.store.save_stage(run_id, StageOutput(stage="execute", status="running", started_at=utcnow(), task_id=task_id,
                                               output={"levels": levels}))  # fmt: skip
    ports.events.publish(run_id, {"type": "stage_started", "stage": "execute", "levels": levels})
    return record.model_copy(update={"status": "executing"}), levels


def _digest(plan: Plan) -> str:
    from agents.actions import plan_digest  # actions imports this module

    return plan_digest(plan)


def _close_execute(ports: Ports, record: RunRecord) -> RunRecord:
    """Save the execute stage's end (its wall time runs until now); the record with it."""
    stage = record.stage("execute")
    if stage is None or stage.status != "running":
        return record
    ended = utcnow()
    started = stage.started_at or ended
    failed = [r for r in record.subtasks if r.status != "succeeded"]
    output = {**stage.output, "succeeded": len(record.subtasks) - len(failed), "not_succeeded": len(failed),
              "cache_hits": sum(1 for r in record.subtasks if r.cached)}  # fmt: skip
    closed = stage.model_copy(update={"status": "failed" if failed else "succeeded", "ended_at": ended, "output": output,
                                      "duration_ms": round((ended - started).total_seconds() * 1000, 3)})  # fmt: skip
    ports.store.save_stage(record.run_id, closed)
    ports.events.publish(record.run_id, {"type": "stage_finished", "stage": "execute", "status": closed.status,
                                         "duration_ms": closed.duration_ms})  # fmt: skip
    stages = tuple(closed if s.stage == "execute" else s for s in record.stages)
    return record.model_copy(update={"stages": stages})


def verify(run_id: str, ports: Ports, task_id: str | None = None) -> RunRecord:
    """RUNE: close the execute stage, then check the run; the run ends succeeded, rejected or failed."""
    record = ports.store.get_run(run_id)
    if record.status not in IN_EXECUTION:
        return record
    plan = plan_of(record)
    if len(record.subtasks) < len(plan.subtasks):
        # Sent early (a duplicate): the run is not ready; the sweep resumes a run whose subtasks stalled.
        return record
    output = executor.answer(plan, list(record.subtasks))
    if record.status == "executing":
        record = _close_execute(ports, record)
        failed = [r for r in record.subtasks if r.status == "failed"]
        if failed:
            errors = [f"{r.subtask_id} ({r.tool}:{r.version}): {r.error}" for r in failed]
            _finish(ports, run_id, "failed", {"executing"}, error="; ".join(errors), output=output)
            return ports.store.get_run(run_id)
        if not ports.store.transition(run_id, "verifying", frozenset({"executing"})):
            return ports.store.get_run(run_id)
    # `verifying` on arrival: a delivery died mid-check; the check is pure, so it runs again.
    with _stage(ports, run_id, "verify", task_id) as out:
        stages = [s.stage for s in record.stages]
        verification = verifier.verify(plan, list(record.subtasks), stages, ports.registry, ports.config)
        out["output"] = {"verification": verification.model_dump(mode="json")}
    if verification.passed:
        _finish(ports, run_id, "succeeded", {"verifying"}, output=output)
    else:
        reasons = [f"{c.name}: {'; '.join(c.evidence)}" for c in verification.checks if not c.passed]
        _finish(ports, run_id, "rejected", {"verifying"}, error="; ".join(reasons), output=output)
    return ports.store.get_run(run_id)


def fail_run(run_id: str, error: str, ports: Ports) -> bool:
    """Mark a run failed from any non-terminal state (a stage crashed); False when it had already ended."""
    moved = ports.store.transition(run_id, "failed", IN_FLIGHT | {"awaiting_approval"}, error=error)
    if moved:
        ports.events.publish(run_id, {"type": "run_finished", "status": "failed", "error": error})
    return moved


def sweep(ports: Ports, now: datetime) -> list[tuple[RunRecord, str]]:
    """Runs in flight with no change for `stall_after_s` (a message lost or a worker killed at a bad moment):
    each is to be resumed (`resume`: send its remaining stages again), or failed after `max_resumes`."""
    stall = ports.config.stall_after_s
    decisions: list[tuple[RunRecord, str]] = []
    for record in ports.store.stalled_runs(IN_FLIGHT, now - timedelta(seconds=stall)):
        resumes = ports.store.resumes(record.run_id)
        if resumes >= ports.config.max_resumes:
            error = f"stalled in {record.status}: no progress for {stall} s, after {resumes} resumes"
            if fail_run(record.run_id, error, ports):
                decisions.append((record, "failed"))
            continue
        ports.store.note_resume(record.run_id, record.status)
        ports.events.publish(record.run_id, {"type": "run_resumed", "status": record.status, "resumes": resumes + 1})
        decisions.append((record, "resume"))
    return decisions


def expire_holds(ports: Ports, now: datetime) -> list[RunRecord]:
    """Held runs (`awaiting_approval`) with no decision for `approval_timeout_s`: ended as rejected (or cancelled,
    by `approval_expiry_action`), the expiry in the audit trail; the runs ended."""
    timeout = ports.config.approval_timeout_s
    to = "rejected" if ports.config.approval_expiry_action == "reject" else "cancelled"
    error = f"approval expired: no decision within {timeout} s"
    ended = []
    for record in ports.store.stalled_runs(frozenset({"awaiting_approval"}), now - timedelta(seconds=timeout)):
        if ports.store.transition(record.run_id, to, frozenset({"awaiting_approval"}), error=error, actor="sweep"):
            ports.events.publish(record.run_id, {"type": "run_finished", "status": to, "error": error})
            ended.append(record)
    return ended

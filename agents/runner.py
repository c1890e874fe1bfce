"""The four stages over the shared run context: each checks the run's state first, records itself, publishes progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents import executor, gatekeeper, graph, verifier
from agents.config import AgentsConfig
from agents.errors import AgentError, InvalidTransition, ToolError, ToolTransientError
from agents.models import TERMINAL_STATUSES, Plan, RunRecord, StageOutput, SubtaskResult, Usage, Verdict
from agents.ports import EventSink, RunStore, ToolCache
from agents.profiles import Profile
from agents.tools import Registry, ToolContext


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


def analyze(run_id: str, ports: Ports, task_id: str | None = None) -> dict[str, Any]:
    """Sena: plan the request (only from `pending`)."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "analyzing", frozenset({"pending"})):
        return report(run_id, "analyze", record.status)
    with _stage(ports, run_id, "analyze", task_id) as out:
        try:
            plan, usage = ports.profiles(record.request.profile).plan(record.request, ports.registry)
        except AgentError as exc:
            out["status"], out["output"] = "failed", {"error": str(exc)}
        else:
            out["output"], out["usage"] = {"plan": plan.model_dump(mode="json")}, usage
    if out["status"] == "failed":
        _finish(ports, run_id, "failed", {"analyzing"}, error=f"analyze: {out['output']['error']}")
        return report(run_id, "analyze", "failed", out["output"])
    return report(run_id, "analyze", "analyzing", out["output"], usage=out["usage"].model_dump())


def gate(run_id: str, ports: Ports, task_id: str | None = None) -> dict[str, Any]:
    """Lubit: approve, reject or hold the plan (only right after the analyst)."""
    record = ports.store.get_run(run_id)
    if record.status != "analyzing" or record.stage("gate") is not None:
        return report(run_id, "gate", record.status)
    plan, usage = plan_of(record), record.stage("analyze").usage  # type: ignore[union-attr]
    with _stage(ports, run_id, "gate", task_id) as out:
        verdict = gatekeeper.check(plan, record.request, ports.registry, ports.config, usage)
        out["output"] = {"verdict": verdict.model_dump(mode="json")}
    fields: dict[str, Any] = {"priority": verdict.priority}
    if verdict.decision == "reject":
        to, fields["error"] = "rejected", "; ".join(verdict.reasons)
    elif verdict.decision == "needs_human":
        to = "awaiting_approval"
    elif record.request.mode == "plan_only":
        to, fields["output"] = "succeeded", {"plan": plan.model_dump(mode="json")}
    else:
        to = "gated"
    _finish(ports, run_id, to, {"analyzing"}, **fields)
    return report(run_id, "gate", to, out["output"], mode=record.request.mode)


def begin_execute(run_id: str, ports: Ports, task_id: str | None = None) -> tuple[RunRecord, list[list[str]] | None]:
    """GitCode starts: the dependency levels to run, or None when the run is not approved (or is over)."""
    record = ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "executing", frozenset({"gated"})):
        return record, None
    levels = graph.levels(plan_of(record).subtasks)
    ports.store.save_stage(run_id, StageOutput(stage="execute", status="running", started_at=utcnow(), task_id=task_id,
                                               output={"levels": levels}))  # fmt: skip
    ports.events.publish(run_id, {"type": "stage_started", "stage": "execute", "levels": levels})
    return record.model_copy(update={"status": "executing"}), levels


def run_subtask(
    run_id: str, subtask_id: str, ports: Ports, previous: dict[str, dict[str, Any]] | None = None
) -> SubtaskResult:
    """Run one subtask once; ToolTransientError propagates so the caller can retry with backoff."""
    record = ports.store.get_run(run_id)
    subtask = next(s for s in plan_of(record).subtasks if s.id == subtask_id)
    done = {r.subtask_id: r for r in record.subtasks}
    started = time.perf_counter()
    if subtask_id in done and done[subtask_id].status == "succeeded":
        return done[subtask_id]
    if record.status != "executing":
        return _save(
            ports,
            run_id,
            executor.result_of(subtask, subtask.args, started, status="skipped", error=f"the run is {record.status}"),
        )
    outputs = {k: v.output for k, v in done.items() if v.status == "succeeded" and v.output is not None}
    outputs.update(previous or {})
    missing = [d for d in subtask.depends_on if d not in outputs]
    if missing:
        error = f"dependency {', '.join(missing)} did not succeed"
        return _save(ports, run_id, executor.result_of(subtask, subtask.args, started, status="skipped", error=error))
    tool = ports.registry.get(subtask.tool, subtask.version)
    args = executor.resolve_args(subtask, tool, outputs)
    try:
        output, cached, attempts = executor.call_tool(
            run_id, subtask, args, ports.registry, ports.context, ports.store, ports.cache
        )
    except ToolTransientError:
        raise
    except ToolError as exc:
        return _save(ports, run_id, executor.result_of(subtask, args, started, status="failed", error=str(exc)))
    result = executor.result_of(subtask, args, started, status="succeeded", output=output, cached=cached, attempts=attempts,
                                idempotency_key=executor.idempotency_key(run_id, subtask.id) if tool.side_effect else None)  # fmt: skip
    return _save(ports, run_id, result)


def fail_subtask(run_id: str, subtask_id: str, error: str, attempts: int, ports: Ports) -> SubtaskResult:
    """Record that a subtask failed for good (retries exhausted or timed out)."""
    subtask = next(s for s in plan_of(ports.store.get_run(run_id)).subtasks if s.id == subtask_id)
    return _save(
        ports,
        run_id,
        executor.result_of(subtask, subtask.args, time.perf_counter(), status="failed", error=error, attempts=attempts),
    )


def _save(ports: Ports, run_id: str, result: SubtaskResult) -> SubtaskResult:
    ports.store.save_result(run_id, result)
    ports.events.publish(run_id, {"type": "subtask_finished", "subtask_id": result.subtask_id, "tool": result.tool,
                                  "status": result.status, "cached": result.cached, "error": result.error,
                                  "duration_ms": result.duration_ms})  # fmt: skip
    return result


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
    if record.status != "executing":
        return record
    record = _close_execute(ports, record)
    plan = plan_of(record)
    output = executor.answer(plan, list(record.subtasks))
    failed = [r for r in record.subtasks if r.status == "failed"]
    if failed or len(record.subtasks) < len(plan.subtasks):
        errors = [f"{r.subtask_id} ({r.tool}:{r.version}): {r.error}" for r in failed] or ["not every subtask ran"]
        _finish(ports, run_id, "failed", {"executing"}, error="; ".join(errors), output=output)
        return ports.store.get_run(run_id)
    if not ports.store.transition(run_id, "verifying", frozenset({"executing"})):
        return ports.store.get_run(run_id)
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
    allowed = {"pending", "analyzing", "gated", "awaiting_approval", "executing", "verifying"}
    moved = ports.store.transition(run_id, "failed", frozenset(allowed), error=error)
    if moved:
        ports.events.publish(run_id, {"type": "run_finished", "status": "failed", "error": error})
    return moved

"""GitCode's subtasks: one tool call of the run's approved plan, run once and recorded; anything else refused."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pydantic import ValidationError

from agents import executor
from agents.errors import RunNotFound, SubtaskRefused, ToolError, ToolTransientError
from agents.models import RunRecord, Subtask, SubtaskResult
from agents.runner import Ports, plan_of
from agents.tools import canonical_json


def run(run_id: str, subtask_id: str, ports: Ports, spec: Subtask | dict[str, Any] | None = None) -> SubtaskResult:
    """Run one subtask of the run's stored plan once; ToolTransientError propagates so the caller can retry with
    backoff. A message's `spec` must be that subtask exactly (id, tool, version, arguments, dependencies), else
    SubtaskRefused: audited, nothing run, nothing stored. Predecessors' outputs come from the run context, never
    from the message."""
    try:
        state = ports.store.subtask_state(run_id, subtask_id)
    except RunNotFound:
        raise _refused(ports, run_id, subtask_id, spec, "there is no such run", known=False) from None
    plan = state.plan
    approved = next((s for s in plan.subtasks if s.id == subtask_id), None) if plan else None
    if plan is None or approved is None:
        raise _refused(ports, run_id, subtask_id, spec, f"{subtask_id} is not a subtask of the run's plan")
    if why := _mismatch(spec, approved):
        raise _refused(ports, run_id, subtask_id, spec, why)
    started, done = time.perf_counter(), state.results.get(subtask_id)
    if done is not None and done.status == "succeeded":
        return done
    if state.status != "executing":
        return _save(ports, run_id, executor.result_of(approved, approved.args, started, status="skipped",
                                                       error=f"the run is {state.status}"))  # fmt: skip
    outputs = {i: r.output for i, r in state.results.items() if r.status == "succeeded" and r.output is not None}
    missing = [d for d in approved.depends_on if d not in outputs]
    if missing:
        error = f"dependency {', '.join(missing)} did not succeed"
        return _save(ports, run_id, executor.result_of(approved, approved.args, started, status="skipped", error=error))
    return _call(ports, run_id, approved, outputs, started, plan.language)


def _call(
    ports: Ports, run_id: str, spec: Subtask, outputs: dict[str, Any], started: float, language: str
) -> SubtaskResult:
    """Call the approved subtask's tool with its arguments (and its predecessors' outputs); save the result."""
    tool = ports.registry.get(spec.tool, spec.version)
    args = executor.resolve_args(spec, tool, outputs, language)
    try:
        output, cached, attempts = executor.call_tool(
            run_id, spec, args, ports.registry, ports.context, ports.store, ports.cache
        )
    except ToolTransientError:
        raise
    except ToolError as exc:
        return _save(ports, run_id, executor.result_of(spec, args, started, status="failed", error=str(exc)))
    result = executor.result_of(spec, args, started, status="succeeded", output=output, cached=cached, attempts=attempts,
                                idempotency_key=executor.idempotency_key(run_id, spec.id) if tool.side_effect else None)  # fmt: skip
    return _save(ports, run_id, result)


def _mismatch(spec: Subtask | dict[str, Any] | None, approved: Subtask) -> str | None:
    """Why a subtask message is not the approved plan's subtask; None when it is (or brings no spec)."""
    if spec is None:
        return None
    try:
        given = spec if isinstance(spec, Subtask) else Subtask.model_validate(spec)
    except ValidationError as exc:
        return f"its spec is not a subtask ({exc.error_count()} errors)"
    if given == approved:
        return None
    differs = [
        name
        for name in ("id", "tool", "version", "args", "depends_on")
        if getattr(given, name) != getattr(approved, name)
    ]
    return f"it differs from the approved plan's {approved.id} ({approved.tool_ref}) in {', '.join(differs)}"


def _refused(
    ports: Ports, run_id: str, subtask_id: str, spec: Subtask | dict[str, Any] | None, why: str, known: bool = True
) -> SubtaskRefused:
    """Audit the refusal (and, for a run that exists, tell its followers); the error to raise."""
    given = spec.model_dump(mode="json") if isinstance(spec, Subtask) else spec if isinstance(spec, dict) else {}
    # The audit names what was asked for, not its arguments (a forger's text, of any size).
    asked = {"tool": str(given.get("tool", ""))[:64], "version": str(given.get("version", ""))[:8],
             "args_sha256": hashlib.sha256(canonical_json(given.get("args")).encode()).hexdigest()[:16]}  # fmt: skip
    ports.store.note_refused(run_id, subtask_id[:64], why, **asked)
    if known:
        ports.events.publish(run_id, {"type": "subtask_refused", "subtask_id": subtask_id[:64], "reason": why})
    return SubtaskRefused(f"subtask {subtask_id[:64]} of run {run_id[:64]} refused: {why}")


def _spec_of(record: RunRecord, subtask_id: str) -> Subtask:
    return next(s for s in plan_of(record).subtasks if s.id == subtask_id)


def fail(run_id: str, subtask_id: str, error: str, attempts: int, ports: Ports) -> SubtaskResult:
    """Record that a subtask of the plan failed for good (retries exhausted or timed out)."""
    spec = _spec_of(ports.store.get_run(run_id), subtask_id)
    return _save(
        ports,
        run_id,
        executor.result_of(spec, spec.args, time.perf_counter(), status="failed", error=error, attempts=attempts),
    )


def _save(ports: Ports, run_id: str, result: SubtaskResult) -> SubtaskResult:
    ports.store.save_result(run_id, result)
    ports.events.publish(run_id, {"type": "subtask_finished", "subtask_id": result.subtask_id, "tool": result.tool,
                                  "status": result.status, "cached": result.cached, "error": result.error,
                                  "duration_ms": result.duration_ms})  # fmt: skip
    return result

"""Agent workflows as a service: what the `agent` CLI and the HTTP API call (never an HTTP-only path)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from agents import actions
from agents import replay as replays
from agents.errors import (
    AgentError,
    BudgetExceeded,
    ConversationNotFound,
    IdempotencyKeyConflict,
    InvalidTransition,
    RunNotFound,
    ToolError,
)
from agents.evaluation import Expected, score, summarise
from agents.gatekeeper import priority_of
from agents.models import TERMINAL_STATUSES, WorkflowRequest
from agents.snapshot import diff
from agents.tools import ToolContext
from gateway.keys import SCOPES
from worker import otel
from worker.agents import canvas
from worker.agents.ports import TERMINAL_EVENT, build_ports, start_run
from worker.application import get_app

log = logging.getLogger("fleet.agents")

# A run stops moving on its own in these states: a waiter can stop waiting.
RESTING = TERMINAL_STATUSES | {"awaiting_approval"}


# In-process callers (the `agent` CLI, `agent eval`) act as the operator, who holds the database and the broker.
OPERATOR_SCOPES = SCOPES


def submit(
    request: WorkflowRequest | dict[str, Any], scopes: Sequence[str] = OPERATOR_SCOPES, owner: str | None = None
) -> str:
    """Send the request to the fleet (`agents.run_workflow`); the run id (an earlier run's, for a known key).
    `scopes` (those of the API key that submits it, replacing any in the request) decide its side effects;
    `owner`, the submitting API key's id, is stored on the run (runs belong to their key)."""
    parsed = request if isinstance(request, WorkflowRequest) else WorkflowRequest.model_validate(request)
    parsed = parsed.model_copy(update={"scopes": tuple(scopes)})
    ports = build_ports()
    if parsed.idempotency_key:
        existing = ports.store.find_by_key(parsed.idempotency_key)  # type: ignore[attr-defined]
        if existing is not None:
            if owner is not None and existing.owner != owner:
                raise IdempotencyKeyConflict()
            return str(existing.run_id)
    if owner is not None and parsed.conversation_id is not None and "operator" not in (parsed.scopes or ()):
        _own_conversation(parsed.conversation_id, owner)
    if owner is not None:
        parsed = _admitted(parsed, owner, ports.config.budgets)

    priority = priority_of(parsed.options)
    # Recorded `pending` before the message goes: a run whose first message is lost still exists, and the sweep
    # starts it (agents.run_workflow finds it by id and sends the stages).
    run_id = str(uuid.uuid4())
    try:
        record, created = start_run(run_id, parsed, owner, trace_id=otel.trace_id())
    except OperationalError as exc:
        # The database is away: the message alone still starts the run (agents.run_workflow records it, retried
        # until the database answers), as before runs were recorded first; only that message's loss goes unseen.
        log.warning(
            "run %s sent before its record: the database does not answer (%s)",
            run_id,
            exc.orig,
            extra={"category": "agent", "run_id": run_id},
        )
    else:
        if not created:  # the idempotency key's run, recorded meanwhile by another producer
            if owner is not None and record.owner != owner:
                raise IdempotencyKeyConflict()
            return str(record.run_id)
        run_id = str(record.run_id)
    get_app().send_task(
        "agents.run_workflow",
        args=[parsed.model_dump(mode="json")],
        kwargs={"owner": owner} if owner else {},
        task_id=run_id,
        queue=str(parsed.options.get("queue") or ports.config.queue),
        priority=priority if isinstance(priority, int) else 5,
    )
    return run_id


def _own_conversation(conversation_id: str, owner: str) -> None:
    """A key adds turns only to its own conversations (a turn sees the earlier ones): 404 for another's."""
    from worker.agents import conversations

    if conversations.get(conversation_id)["owner"] != owner:
        raise ConversationNotFound(f"no conversation {conversation_id}")


def _admitted(request: WorkflowRequest, owner: str, budgets: Any) -> WorkflowRequest:
    """The request as admission leaves it for the key's budget; BudgetExceeded when it is refused."""
    from agents.gatekeeper import admit
    from worker.agents.usage import spending

    if budgets.for_key(owner) is None:
        return request
    admission = admit(request, spending(owner, budgets))
    if admission.action == "reject":
        raise BudgetExceeded(admission.reason)
    return admission.request


def key_spending(key_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each key's model spending today (UTC) against its budget (`agent keys list`)."""
    from agents.budgets import Spending
    from agents.models import Usage
    from worker.agents.usage import spent_today

    budgets = build_ports().config.budgets
    spent = spent_today(key_ids)
    return {k: Spending(k, spent.get(k, Usage()), budgets.for_key(k)).describe() for k in key_ids}


def run(
    text: str,
    *,
    mode: str = "planner",
    profile: str = "local",
    options: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    wait: bool = True,
    timeout_s: float = 120.0,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """Submit a request; with `wait`, return the run record once it rests (finished or awaiting approval)."""
    request = WorkflowRequest(
        input=text,
        mode=mode,
        profile=profile,
        options=options or {},
        idempotency_key=idempotency_key,
        conversation_id=conversation_id,
    )
    run_id = submit(request)
    return wait_for_run(run_id, timeout_s) if wait else {"run_id": run_id, "status": "pending"}


def run_status(run_id: str) -> dict[str, Any]:
    """The run record: status, stages with timings and verdicts, subtask results, output."""
    data: dict[str, Any] = build_ports().store.get_run(run_id).model_dump(mode="json")
    return data


def snapshot(run_id: str) -> dict[str, Any]:
    """The run's config snapshot (profile, tools and schema hashes, prompt, options, commit, masked settings, input, output)."""
    ports = build_ports()
    return ports.store.get_snapshot(ports.store.get_run(run_id).snapshot_id or "")


def list_runs(limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    return build_ports().store.list_runs(limit)  # type: ignore[attr-defined, no-any-return]


def progress(
    run_id: str, last_event_id: str = "0", timeout_s: float = 300.0, quiet_every_s: float | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The run's progress events (id, event) from after `last_event_id`, until it rests or the timeout passes.

    With `quiet_every_s`, `("", {})` comes after each such stretch without events (an SSE heartbeat).
    """
    events = build_ports().events
    deadline = time.monotonic() + timeout_s
    spoke = time.monotonic()
    while (left := deadline - time.monotonic()) > 0:
        if quiet_every_s is not None and time.monotonic() - spoke >= quiet_every_s:
            spoke = time.monotonic()
            yield "", {}
        # Blocks at most a second, and never past the deadline: a caller's timeout is a bound, not a hint.
        batch = events.read(run_id, last_event_id, block_ms=max(1, min(1000, int(left * 1000))))  # type: ignore[attr-defined]
        if batch:
            spoke = time.monotonic()
        for event_id, event in batch:
            last_event_id = event_id
            yield event_id, event
            resting_event = event.get("type") == TERMINAL_EVENT or event.get("status") == "awaiting_approval"
            # A replayed "awaiting_approval" from before an approval is history: the database has the last word.
            if resting_event and _status(run_id) in RESTING:
                return
        if not batch and _status(run_id) in RESTING:
            return  # an event lost on a Redis hiccup must not keep a reader waiting


def _status(run_id: str) -> str:
    """The run's status; `pending` while no worker has recorded it yet."""
    try:
        return build_ports().store.get_run(run_id).status
    except RunNotFound:
        return "pending"


def wait_for_run(run_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Block (on the progress stream) until the run rests; the run record."""
    for _event in progress(run_id, "0", timeout_s):
        pass
    if _status(run_id) == "pending":
        # No worker took it within the timeout: say so instead of failing on a run nobody recorded yet.
        return {"run_id": run_id, "status": "pending", "stages": [], "subtasks": [], "output": None,
                "error": f"no worker started the run within {timeout_s:g} s"}  # fmt: skip
    return run_status(run_id)


def withdraw(run_id: str, request: WorkflowRequest, actor: str = "operator") -> dict[str, Any] | None:
    """Cancel a run no worker has started, so that a worker taking its message later ends it at once.

    None when a worker started it meanwhile (the run goes on). A queued message cannot be taken back from
    Redis, and a revoke reaches only the workers online: the run's record, cancelled, is what a worker obeys.
    """
    record, _created = start_run(run_id, request)
    if record.run_id != run_id or record.status != "pending":
        return None
    return cancel(run_id, actor)


def cancel(run_id: str, actor: str = "operator") -> dict[str, Any]:
    """Mark the run cancelled (partial results stay) and revoke its queued and running tasks."""
    ports = build_ports()
    actions.cancel(run_id, ports, actor)
    task_ids = ports.store.task_ids(run_id)
    app = get_app()
    if task_ids:
        app.control.revoke(task_ids, terminate=True, signal="SIGTERM")
    # The producer's id (the run id) belongs to the last stage, which a revoked canvas never reaches: resolve
    # it as REVOKED so a producer waiting on it learns at once (the run record says cancelled). Forced, and
    # final: neither a stage still running nor the chord's error from a terminated subtask overwrites it.
    app.backend.revoke_result(run_id, reason=f"run cancelled by {actor}")
    return run_status(run_id)


def approve(run_id: str, actor: str = "operator", digest: str | None = None) -> dict[str, Any]:
    """Release a held run to the executor (the analyst and the gatekeeper do not run again); with `digest`, only
    while its plan is the one with that digest (checked again by the executor)."""
    ports = build_ports()
    record = actions.approve(run_id, ports, actor, digest)
    sig = canvas.resume(run_id, record.queue, record.priority, app=get_app())
    ports.store.add_task_ids(run_id, list(canvas.task_ids(sig)))
    sig.apply_async()
    return run_status(run_id)


def reject(run_id: str, actor: str = "operator", reason: str = "") -> dict[str, Any]:
    """End a held run as rejected."""
    actions.reject(run_id, build_ports(), actor, reason)
    return run_status(run_id)


def replay(run_id: str, from_stage: str = "analyze") -> dict[str, Any]:
    """Re-run a stored run from its snapshot in this process; the diff of results and of configuration."""
    ports = build_ports()
    record = ports.store.get_run(run_id)
    if not record.finished:
        raise InvalidTransition(f"run {run_id} is {record.status}; replay a finished run")
    snap = ports.store.get_snapshot(record.snapshot_id or "")
    result = replays.replay(record, snap, ports, from_stage)
    current = {t.ref: t.schema_hash for t in ports.registry.tools()}
    recorded = {t["ref"]: t["schema_hash"] for t in snap.get("tools", [])}
    result["config_diff"] = diff({"tools": recorded}, {"tools": current})
    return result


def list_tools() -> list[dict[str, Any]]:
    """Every registered tool with its version, schema, schema hash and side-effect flag."""
    return [tool.describe() for tool in build_ports().registry.tools()]


def test_tool(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call one tool in this process (`name` or `name:version`); side-effecting tools are refused."""
    tool_name, _, version = name.partition(":")
    ports = build_ports()
    tool = ports.registry.get(tool_name, version or "v1")
    if tool.side_effect:
        raise ToolError(f"{tool.ref} has side effects; run it through a workflow, not `tool test`")
    started = time.perf_counter()
    output = ports.registry.call(tool.name, tool.version, args, ToolContext(**{**ports.context.__dict__}))
    return {
        "tool": tool.ref,
        "args": args,
        "output": output,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


__all__ = [
    "AgentError",
    "approve",
    "cancel",
    "evaluate",
    "list_runs",
    "list_tools",
    "progress",
    "reject",
    "replay",
    "run",
    "run_status",
    "snapshot",
    "submit",
    "test_tool",
    "wait_for_run",
    "withdraw",
]


def _earlier_turns(texts: list[str], profile: str, timeout_s: float) -> str | None:
    """A conversation holding a sample's earlier turns, each run to its end (None for a sample without any)."""
    if not texts:
        return None
    from gateway.services import conversations

    conversation = str(conversations.create("agent eval")["conversation_id"])
    for text in texts:
        run(text, profile=profile, timeout_s=timeout_s, conversation_id=conversation)
    return conversation


def evaluate(samples: Path, profile: str = "local", parallel: int = 4, timeout_s: float = 120.0) -> dict[str, Any]:
    """Run every sample of `samples/inputs` through the fleet, score it against `samples/expected`, write results."""
    inputs = sorted((samples / "inputs").glob("*.json"))
    if not inputs:
        raise AgentError(f"no samples in {samples / 'inputs'}")

    def one(path: Path) -> dict[str, Any]:
        sample = json.loads(path.read_text(encoding="utf-8"))
        expected = Expected.model_validate_json((samples / "expected" / path.name).read_text(encoding="utf-8"))
        conversation = _earlier_turns(sample.get("conversation") or [], profile, timeout_s)
        started = time.perf_counter()
        record = run(sample["input"], profile=profile, options=sample.get("options", {}), timeout_s=timeout_s,
                     conversation_id=conversation)  # fmt: skip
        result = score(expected, record, (time.perf_counter() - started) * 1000)
        return {"sample": path.stem, "language": sample.get("language"), **result}

    with ThreadPoolExecutor(parallel) as pool:
        scores = list(pool.map(one, inputs))
    results_dir = samples / "results" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir.mkdir(parents=True, exist_ok=True)
    with (results_dir / "samples.jsonl").open("w", encoding="utf-8") as out:
        for item in scores:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    summary = {"profile": profile, "metrics": summarise(scores), "results_dir": str(results_dir)}
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

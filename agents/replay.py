"""Running a workflow in process (tests, replays) and comparing a replay with the stored run."""

from __future__ import annotations

from dataclasses import replace as dc_replace
from typing import Any

from agents import runner, subtask
from agents.conversation import Context
from agents.errors import AgentError, ToolTransientError
from agents.memory import MemoryEvents, MemoryStore
from agents.models import STAGES, RunRecord, WorkflowRequest
from agents.snapshot import diff, strip_volatile


def run_inline(run_id: str, ports: runner.Ports) -> RunRecord:
    """Every stage in this process, in order, subtasks level by level (no Celery)."""
    runner.analyze(run_id, ports)
    runner.gate(run_id, ports)
    record, levels = runner.begin_execute(run_id, ports)
    # As the canvas does: each subtask gets its approved spec (and reads its predecessors' outputs itself).
    specs = {s.id: s for s in runner.plan_of(record).subtasks} if levels else {}
    for level in levels or []:
        for subtask_id in level:
            try:
                subtask.run(run_id, subtask_id, ports, spec=specs[subtask_id])
            except ToolTransientError as exc:
                subtask.fail(run_id, subtask_id, str(exc), 1, ports)
    return runner.verify(run_id, ports)


def comparable(record: RunRecord) -> dict[str, Any]:
    """The parts of a run a replay should reproduce."""
    stages = {s.stage: s.output for s in record.stages}
    compared: dict[str, Any] = strip_volatile({
        "status": record.status,
        "error": record.error,
        "plan": stages.get("analyze"),
        "verdict": stages.get("gate"),
        "subtasks": [r.model_dump(mode="json", exclude={"duration_ms", "attempts", "idempotency_key", "cached"}) for r in record.subtasks],
        "verification": stages.get("verify"),
        "output": {k: v for k, v in (record.output or {}).items() if k != "cache_hits"},
    })  # fmt: skip
    return compared


def _seed(original: RunRecord, store: MemoryStore, replay_id: str, from_stage: str, ports: runner.Ports) -> None:
    """Copy the stored outputs of the stages before `from_stage`, and every side effect's stored output."""
    keep = STAGES[: STAGES.index(from_stage)]
    for stage in original.stages:
        if stage.stage in keep:
            store.save_stage(replay_id, stage)
    status = {"analyze": "pending", "gate": "analyzing", "execute": "gated", "verify": "executing"}[from_stage]
    store.runs[replay_id] = store.runs[replay_id].model_copy(update={"status": status})
    for result in original.subtasks:
        if from_stage == "verify":
            store.save_result(replay_id, result)
        tool = (
            ports.registry.get(result.tool, result.version) if ports.registry.has(result.tool, result.version) else None
        )
        if tool is not None and tool.side_effect and result.output is not None:
            # A replay never repeats a side effect: the call is answered from what the run recorded.
            store.calls[f"{replay_id}:{result.subtask_id}"] = (1, result.output)


def replay(
    original: RunRecord, snapshot: dict[str, Any], ports: runner.Ports, from_stage: str = "analyze"
) -> dict[str, Any]:
    """Re-run a stored run from its snapshot in process; the diff of results and of configuration."""
    if from_stage not in STAGES:
        raise AgentError(f"--from-stage must be one of {', '.join(STAGES)}")
    store, events = MemoryStore(), MemoryEvents()
    replay_id = f"replay-{original.run_id}"
    request = WorkflowRequest.model_validate(snapshot.get("input") or original.request.model_dump())
    store.create_run(replay_id, request.model_copy(update={"idempotency_key": None}), original.queue)
    _seed(original, store, replay_id, from_stage, ports)
    analyzed = original.stage("analyze")
    if request.conversation_id and analyzed is not None and "context" in analyzed.output:
        # The earlier turns as the original run saw them: the conversation may have gone on since.
        store.turns[request.conversation_id] = list(Context.model_validate(analyzed.output["context"]).turns)
    replayed = run_inline(replay_id, dc_replace(ports, store=store, events=events, cache=None))
    return {
        "run_id": original.run_id,
        "from_stage": from_stage,
        "identical": comparable(original) == comparable(replayed),
        "diff": diff(comparable(original), comparable(replayed)),
        "replayed": replayed.model_dump(mode="json"),
    }

"""In-memory implementations of the ports, for unit tests and in-process replays."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.conversation import Turn, turn_of
from agents.errors import RunNotFound
from agents.models import Plan, RunRecord, StageOutput, SubtaskResult, WorkflowRequest
from agents.ports import SubtaskState


class MemoryStore:
    """RunStore in a dict; the same semantics as the SQL store."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.keys: dict[str, str] = {}
        self.calls: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, list[str]] = {}
        self.changed: dict[str, datetime] = {}
        self.resumed: dict[str, int] = {}
        self.refused: list[dict[str, Any]] = []
        # Earlier turns by conversation, as a replay gives them (the original run's context).
        self.turns: dict[str, list[Turn]] = {}

    def _changed_at(self, run_id: str) -> datetime:
        # When the run, a stage or a result of it last changed.
        return self.changed.get(run_id) or self.get_run(run_id).updated_at or datetime.now(UTC)

    def create_run(
        self, run_id: str, request: WorkflowRequest, queue: str, owner: str | None = None, trace_id: str | None = None
    ) -> tuple[RunRecord, bool]:
        """A new pending run, or the one with the same idempotency key."""
        if request.idempotency_key and request.idempotency_key in self.keys:
            return self.runs[self.keys[request.idempotency_key]], False
        if run_id in self.runs:
            return self.runs[run_id], False
        now = datetime.now(UTC)
        record = RunRecord(run_id=run_id, status="pending", request=request, queue=queue, owner=owner, trace_id=trace_id,
                           snapshot_id=f"snap-{run_id}", timeline={"pending": now}, created_at=now,
                           updated_at=now)  # fmt: skip
        self.runs[run_id] = record
        if request.idempotency_key:
            self.keys[request.idempotency_key] = run_id
        return record, True

    def get_run(self, run_id: str) -> RunRecord:
        """The run; RunNotFound when absent."""
        if run_id not in self.runs:
            raise RunNotFound(f"no run {run_id}")
        return self.runs[run_id]

    def transition(self, run_id: str, to: str, allowed_from: frozenset[str], **fields: Any) -> bool:
        """Compare-and-set the status."""
        record = self.get_run(run_id)
        fields.pop("actor", None)
        if record.status not in allowed_from:
            return False
        now = datetime.now(UTC)
        self.runs[run_id] = record.model_copy(
            update={"status": to, "timeline": {**record.timeline, to: now}, "updated_at": now, **fields}
        )
        self.changed[run_id] = now
        return True

    def save_stage(self, run_id: str, stage: StageOutput) -> None:
        """Insert or replace a stage."""
        record = self.get_run(run_id)
        stages = (*tuple(s for s in record.stages if s.stage != stage.stage), stage)
        self.runs[run_id] = record.model_copy(update={"stages": stages})
        self.changed[run_id] = datetime.now(UTC)

    def save_result(self, run_id: str, result: SubtaskResult) -> None:
        """Insert or replace a subtask result."""
        record = self.get_run(run_id)
        results = (*tuple(r for r in record.subtasks if r.subtask_id != result.subtask_id), result)
        self.runs[run_id] = record.model_copy(update={"subtasks": tuple(sorted(results, key=lambda r: r.subtask_id))})
        self.changed[run_id] = datetime.now(UTC)

    def subtask_state(self, run_id: str, subtask_id: str) -> SubtaskState:
        """The run's status, its plan and the results of the subtask and of those it depends on."""
        record = self.get_run(run_id)
        analyzed = record.stage("analyze")
        plan = Plan.model_validate(analyzed.output["plan"]) if analyzed and "plan" in analyzed.output else None
        wanted = {subtask_id} | {d for s in (plan.subtasks if plan else ()) if s.id == subtask_id for d in s.depends_on}
        return SubtaskState(record.status, plan, {r.subtask_id: r for r in record.subtasks if r.subtask_id in wanted})

    def note_refused(self, run_id: str, subtask_id: str, reason: str, **details: Any) -> None:
        """Remember a refused subtask message."""
        self.refused.append({"run_id": run_id, "subtask_id": subtask_id, "reason": reason, **details})

    def add_task_ids(self, run_id: str, task_ids: list[str]) -> None:
        """Remember task ids."""
        self.tasks.setdefault(run_id, []).extend(task_ids)

    def task_ids(self, run_id: str) -> list[str]:
        """Remembered task ids."""
        return list(self.tasks.get(run_id, []))

    def claim_call(self, key: str, run_id: str, subtask_id: str) -> tuple[int, dict[str, Any] | None]:
        """Count an attempt; the stored output when done."""
        attempts, output = self.calls.get(key, (0, None))
        self.calls[key] = (attempts + 1, output)
        return attempts + 1, output

    def complete_call(self, key: str, output: dict[str, Any]) -> None:
        """Store the output of a finished call."""
        attempts, _ = self.calls.get(key, (1, None))
        self.calls[key] = (attempts, output)

    def save_snapshot(self, snapshot_id: str, run_id: str, data: dict[str, Any]) -> None:
        """Store a snapshot."""
        self.snapshots[snapshot_id] = data

    def stalled_runs(self, statuses: frozenset[str], idle_since: datetime, limit: int = 100) -> list[RunRecord]:
        """Runs in `statuses` unchanged since `idle_since`, oldest change first."""
        stalled = [r for r in self.runs.values() if r.status in statuses and self._changed_at(r.run_id) < idle_since]
        return sorted(stalled, key=lambda r: self._changed_at(r.run_id))[:limit]

    def resumes(self, run_id: str) -> int:
        """How many times the run was resumed."""
        return self.resumed.get(run_id, 0)

    def note_resume(self, run_id: str, status: str) -> None:
        """Count a resume; the run counts as changed now."""
        self.resumed[run_id] = self.resumed.get(run_id, 0) + 1
        self.changed[run_id] = datetime.now(UTC)

    def conversation_turns(self, conversation_id: str, before: datetime, limit: int = 50) -> list[Turn]:
        """The conversation's earlier turns, oldest first (those seeded by a replay, when it seeded some)."""
        if conversation_id in self.turns:
            return list(self.turns[conversation_id])[-limit:]
        runs = [r for r in self.runs.values() if r.request.conversation_id == conversation_id
                and r.created_at is not None and r.created_at < before]  # fmt: skip
        return [turn_of(r) for r in sorted(runs, key=lambda r: r.created_at or before)[-limit:]]

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """A stored snapshot."""
        if snapshot_id not in self.snapshots:
            raise RunNotFound(f"no snapshot {snapshot_id}")
        data = self.snapshots[snapshot_id]
        run = self.runs.get(str(data.get("run_id")))
        return {**data, **({"status": run.status, "output": run.output, "error": run.error} if run else {})}


class MemoryEvents:
    """EventSink into a list."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        """Append the event."""
        self.events.append((run_id, event))


class MemoryCache:
    """ToolCache in a dict (no expiry)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached value."""
        return self.values.get(key)

    def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        """Cache the value."""
        self.values[key] = value

"""What the stages need from the outside world, as Protocols; SQL and Redis implement them in worker/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agents.conversation import Turn
from agents.models import Plan, RunRecord, StageOutput, SubtaskResult, WorkflowRequest


@dataclass(frozen=True)
class SubtaskState:
    """What running one subtask needs: the run's status, the plan the analyst stored (None before it did), and
    the stored results of the subtask and of the subtasks the plan says it depends on, by subtask id."""

    status: str
    plan: Plan | None
    results: dict[str, SubtaskResult] = field(default_factory=dict)


class RunStore(Protocol):
    """The shared run context: runs, stages, subtask results, snapshots and idempotency keys."""

    def create_run(
        self, run_id: str, request: WorkflowRequest, queue: str, owner: str | None = None, trace_id: str | None = None
    ) -> tuple[RunRecord, bool]:
        """A new pending run, or the existing one with the same idempotency key (then False)."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run with its stages and subtask results; RunNotFound when absent."""
        ...

    def transition(self, run_id: str, to: str, allowed_from: frozenset[str], **fields: Any) -> bool:
        """Move the run to `to` only from one of `allowed_from`; also sets fields (error, output, priority)."""
        ...

    def save_stage(self, run_id: str, stage: StageOutput) -> None:
        """Insert or replace one stage's record."""
        ...

    def save_result(self, run_id: str, result: SubtaskResult) -> None:
        """Insert or replace one subtask's result."""
        ...

    def subtask_state(self, run_id: str, subtask_id: str) -> SubtaskState:
        """The run's status, its stored plan and the results one subtask needs; RunNotFound when absent."""
        ...

    def note_refused(self, run_id: str, subtask_id: str, reason: str, **details: Any) -> None:
        """Audit a subtask message that was refused (not the approved plan's subtask)."""
        ...

    def add_task_ids(self, run_id: str, task_ids: list[str]) -> None:
        """Remember Celery task ids of the run, so cancel can revoke them."""
        ...

    def task_ids(self, run_id: str) -> list[str]:
        """Every Celery task id remembered for the run."""
        ...

    def claim_call(self, key: str, run_id: str, subtask_id: str) -> tuple[int, dict[str, Any] | None]:
        """Count an attempt of a side-effecting call; its stored output when an attempt already finished."""
        ...

    def complete_call(self, key: str, output: dict[str, Any]) -> None:
        """Record that the call with this key finished, with its output."""
        ...

    def save_snapshot(self, snapshot_id: str, run_id: str, data: dict[str, Any]) -> None:
        """Insert or replace a config snapshot."""
        ...

    def stalled_runs(self, statuses: frozenset[str], idle_since: datetime, limit: int = 100) -> list[RunRecord]:
        """Runs in one of `statuses` whose record, stages and results have not changed since `idle_since`."""
        ...

    def resumes(self, run_id: str) -> int:
        """How many times the sweep resumed the run."""
        ...

    def note_resume(self, run_id: str, status: str) -> None:
        """Record that the sweep resumed the run from `status` (the run counts as changed now)."""
        ...

    def conversation_turns(self, conversation_id: str, before: datetime, limit: int = 50) -> list[Turn]:
        """The newest `limit` runs of a conversation created before `before`, as turns, oldest first."""
        ...

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """A stored snapshot with its run's final status, output and error; RunNotFound when absent."""
        ...


class EventSink(Protocol):
    """Publishes a run's progress (stage start/end, subtask completion)."""

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one event to the run's stream."""
        ...


class ToolCache(Protocol):
    """Tool results by tool, version and canonical arguments, with a TTL."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached output, None on a miss."""
        ...

    def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        """Cache an output for ttl_s seconds."""
        ...

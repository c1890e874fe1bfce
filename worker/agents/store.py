"""The SQL implementation of agents.ports.RunStore: the shared run context every stage reads and writes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Engine,
    String,
    Table,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, Update

from agents.conversation import Turn, turn_of
from agents.errors import RunNotFound
from agents.models import TERMINAL_STATUSES, Plan, RunRecord, StageOutput, SubtaskResult, Usage, WorkflowRequest
from agents.ports import SubtaskState
from agents.snapshot import snapshot_id_of
from worker import audit
from worker.agents.models import AgentIdempotencyKey, AgentRun, AgentSnapshot, AgentStage, AgentSubtaskResult, AgentTask
from worker.db import get_engine, session_scope
from worker.models.core import AuditEvent

AUDITED = TERMINAL_STATUSES | {"awaiting_approval"}


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns; they were written in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _stage_of(row: Any) -> StageOutput:
    return StageOutput(
        stage=row.stage,
        status=row.status,
        output=row.output or {},
        started_at=_aware(row.started_at),
        ended_at=_aware(row.ended_at),
        duration_ms=row.duration_ms,
        usage=Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens, cost=row.cost),
        task_id=row.task_id,
    )


def _record_of(run: Any, stages: Sequence[Any], results: Sequence[Any]) -> RunRecord:
    """The record from a run, its stages and its results: ORM objects or rows, by their column names."""
    # The timeline in the order the run went through it (PostgreSQL's jsonb orders keys its own way).
    timeline = sorted((datetime.fromisoformat(v), k) for k, v in (run.timeline or {}).items())
    return RunRecord(
        run_id=run.run_id, status=run.status, request=WorkflowRequest.model_validate(run.request),
        priority=run.priority, queue=run.queue, owner=run.owner, trace_id=getattr(run, "trace_id", None), stages=tuple(_stage_of(s) for s in stages),
        subtasks=tuple(SubtaskResult.model_validate(r.data) for r in results), output=run.output, error=run.error,
        snapshot_id=run.snapshot_id, timeline={k: at for at, k in timeline},
        created_at=_aware(run.created_at), updated_at=_aware(run.updated_at),
    )  # fmt: skip


# Statements of the hot path (every stage, every subtask), built once per database dialect and shape, with bind
# parameters: building and coercing a statement per call cost more than running it on SQLite.
_RUNS, _STAGES, _RESULTS = (
    AgentRun.metadata.tables[m.__tablename__] for m in (AgentRun, AgentStage, AgentSubtaskResult)
)


@functools.cache
def _transition_sql(dialect: str, fields: tuple[str, ...]) -> Update:
    """Compare-and-set the status, add it to the timeline in the same UPDATE (no read of the row first), set `fields`."""
    at, to = cast(bindparam("p_at"), String), bindparam("p_to", type_=String)
    if dialect == "postgresql":
        stamp = func.jsonb_build_object(cast(to, String), at)
        merged = func.coalesce(cast(_RUNS.c.timeline, postgresql.JSONB), literal_column("'{}'::jsonb")).op("||")(stamp)
        timeline: Any = cast(merged, JSON)
    else:
        timeline = func.json_set(func.coalesce(_RUNS.c.timeline, literal_column("'{}'")), bindparam("p_path"), at)
    values = {name: bindparam(f"p_{name}", type_=_RUNS.c[name].type) for name in fields}
    return (
        update(_RUNS)
        .where(_RUNS.c.run_id == bindparam("p_run_id"), _RUNS.c.status.in_(bindparam("p_from", expanding=True)))
        .values(status=to, updated_at=bindparam("p_now", type_=_RUNS.c.updated_at.type), timeline=timeline, **values)
    )


@functools.cache
def _upsert_sql(dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...], replace: bool) -> Insert:
    """INSERT with a bind parameter `p_<column>` per column; on a conflict on `keys`, replace the row or keep it."""
    insert: postgresql.Insert | sqlite.Insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    insert = insert.values({c: bindparam(f"p_{c}", type_=table.c[c].type) for c in columns})
    if not replace:
        return insert.on_conflict_do_nothing(index_elements=list(keys))
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_={c: insert.excluded[c] for c in columns if c not in keys}
    )


_RUN_SQL = select(_RUNS).where(_RUNS.c.run_id == bindparam("p_run_id"))
_STAGES_SQL = select(_STAGES).where(_STAGES.c.run_id == bindparam("p_run_id")).order_by(_STAGES.c.id)
_RESULTS_SQL = select(_RESULTS.c.data).where(_RESULTS.c.run_id == bindparam("p_run_id")).order_by(_RESULTS.c.subtask_id)
_PLAN_SQL = (
    select(_RUNS.c.status, _STAGES.c.output)
    .outerjoin(_STAGES, and_(_STAGES.c.run_id == _RUNS.c.run_id, _STAGES.c.stage == "analyze"))
    .where(_RUNS.c.run_id == bindparam("p_run_id"))
)
_SOME_RESULTS_SQL = select(_RESULTS.c.data).where(
    _RESULTS.c.run_id == bindparam("p_run_id"), _RESULTS.c.subtask_id.in_(bindparam("p_ids", expanding=True))
)


class SqlRunStore:
    """Runs, stages, results, snapshots and idempotency keys in the fleet database."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()

    def _record(self, session: Session, run: Any) -> RunRecord:
        params = {"p_run_id": run.run_id}
        stages = session.execute(_STAGES_SQL, params).all()
        return _record_of(run, stages, session.execute(_RESULTS_SQL, params).all())

    def _upsert(
        self, table: Table, keys: tuple[str, ...], rows: dict[str, Any] | list[dict[str, Any]], replace: bool = True
    ) -> None:
        """Insert rows (column -> value), replacing (or keeping) the row already holding the same `keys`."""
        first: dict[str, Any] = rows if isinstance(rows, dict) else rows[0]
        statement = _upsert_sql(self.engine.dialect.name, table, keys, tuple(first), replace)
        params = {f"p_{k}": v for k, v in first.items()} if isinstance(rows, dict) else None
        with session_scope(self.engine) as session:
            many = [] if isinstance(rows, dict) else [{f"p_{k}": v for k, v in row.items()} for row in rows]
            session.execute(statement, params or many)

    def create_run(
        self, run_id: str, request: WorkflowRequest, queue: str, owner: str | None = None, trace_id: str | None = None
    ) -> tuple[RunRecord, bool]:
        """A new pending run, or the one already holding the idempotency key or the run id (then False)."""
        if request.idempotency_key and (existing := self._by_key(request.idempotency_key)):
            return existing, False
        now = datetime.now(UTC)
        try:
            with session_scope(self.engine) as session:
                run = AgentRun(run_id=run_id, status="pending", request=request.model_dump(mode="json"), queue=queue, owner=owner,
                               conversation_id=request.conversation_id, trace_id=trace_id,
                               input_text=request.input,
                               idempotency_key=request.idempotency_key, snapshot_id=snapshot_id_of(run_id),
                               timeline={"pending": now.isoformat()}, created_at=now, updated_at=now)  # fmt: skip
                session.add(run)
                audit.record(session, "agent", "run_created", run_id, profile=request.profile, mode=request.mode)
                session.flush()
                return _record_of(run, (), ()), True  # a new run has no stages nor results to read
        except IntegrityError as exc:
            # Two producers raced with the same idempotency key, or the same message was delivered again (its
            # worker died after recording the run): the run already recorded.
            existing = self._by_key(request.idempotency_key) if request.idempotency_key else None
            if existing is None:
                try:
                    existing = self.get_run(run_id)
                except RunNotFound:
                    raise exc from None  # neither the key's run nor this id's: another constraint
            return existing, False

    def find_by_key(self, key: str) -> RunRecord | None:
        """The run holding an idempotency key, None when no run has it."""
        return self._by_key(key)

    def _by_key(self, key: str) -> RunRecord | None:
        with session_scope(self.engine) as session:
            run = session.scalars(select(AgentRun).where(AgentRun.idempotency_key == key)).first()
            return self._record(session, run) if run else None

    def get_run(self, run_id: str) -> RunRecord:
        """The run with its stages and results; RunNotFound when absent."""
        with session_scope(self.engine) as session:
            run = session.execute(_RUN_SQL, {"p_run_id": run_id}).first()
            if run is None:
                raise RunNotFound(f"no run {run_id}")
            return self._record(session, run)

    def transition(self, run_id: str, to: str, allowed_from: frozenset[str], **fields: Any) -> bool:
        """Compare-and-set the status in one UPDATE, so two workers cannot both move the run; the timeline is
        extended in the same statement."""
        now = datetime.now(UTC)
        actor = fields.pop("actor", None)
        statement = _transition_sql(self.engine.dialect.name, tuple(sorted(fields)))
        params = {f"p_{k}": v for k, v in fields.items()}
        params.update(p_run_id=run_id, p_from=sorted(allowed_from), p_to=to, p_now=now, p_at=now.isoformat(),
                      p_path=f'$."{to}"')  # fmt: skip
        with session_scope(self.engine) as session:
            moved = session.execute(statement, params)
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                return False
            # The audit trail keeps what a person looks for (outcomes, holds, human actions), not every step.
            if actor or to in AUDITED:
                audit.record(session, "agent", f"run_{to}", run_id, actor=actor or "system", error=fields.get("error"))
            return True

    def save_stage(self, run_id: str, stage: StageOutput) -> None:
        """Insert or replace one stage's record."""
        values = {"status": stage.status, "output": stage.output, "started_at": stage.started_at, "ended_at": stage.ended_at,
                  "duration_ms": stage.duration_ms, "prompt_tokens": stage.usage.prompt_tokens,
                  "completion_tokens": stage.usage.completion_tokens, "cost": stage.usage.cost, "task_id": stage.task_id}  # fmt: skip
        self._upsert(_STAGES, ("run_id", "stage"), {"run_id": run_id, "stage": stage.stage, **values})

    def save_result(self, run_id: str, result: SubtaskResult) -> None:
        """Insert or replace one subtask's result (one upsert)."""
        row = {"run_id": run_id, "subtask_id": result.subtask_id, "data": result.model_dump(mode="json"),
               "status": result.status, "updated_at": datetime.now(UTC)}  # fmt: skip
        self._upsert(_RESULTS, ("run_id", "subtask_id"), row)

    def subtask_state(self, run_id: str, subtask_id: str) -> SubtaskState:
        """The run's status and stored plan, then the results of the subtask and of those the plan says it depends
        on (two SELECTs on one connection); RunNotFound when the run is absent."""
        with self.engine.connect() as connection:
            row = connection.execute(_PLAN_SQL, {"p_run_id": run_id}).first()
            if row is None:
                raise RunNotFound(f"no run {run_id}")
            plan = Plan.model_validate(row.output["plan"]) if row.output and "plan" in row.output else None
            deps = next((s.depends_on for s in plan.subtasks if s.id == subtask_id), ()) if plan else ()
            found = connection.execute(_SOME_RESULTS_SQL, {"p_run_id": run_id, "p_ids": [subtask_id, *deps]}).all()
        results = (SubtaskResult.model_validate(r.data) for r in found)
        return SubtaskState(row.status, plan, {r.subtask_id: r for r in results})

    def note_refused(self, run_id: str, subtask_id: str, reason: str, **details: Any) -> None:
        """An audit event `subtask_refused` for the run (actor: whoever has the broker)."""
        with session_scope(self.engine) as session:
            audit.record(session, "agent", "subtask_refused", run_id, actor="broker", subtask_id=subtask_id,
                         reason=reason, **details)  # fmt: skip

    def add_task_ids(self, run_id: str, task_ids: list[str]) -> None:
        """Remember Celery task ids of the run (already known ones are skipped)."""
        rows = [{"task_id": t, "run_id": run_id} for t in dict.fromkeys(task_ids)]
        if rows:
            self._upsert(AgentTask.metadata.tables[AgentTask.__tablename__], ("task_id",), rows, replace=False)

    def task_ids(self, run_id: str) -> list[str]:
        """Every task id remembered for the run."""
        with session_scope(self.engine) as session:
            return list(session.scalars(select(AgentTask.task_id).where(AgentTask.run_id == run_id)))

    def claim_call(self, key: str, run_id: str, subtask_id: str) -> tuple[int, dict[str, Any] | None]:
        """Count one attempt of a side-effecting call; its output when an earlier attempt finished."""
        with session_scope(self.engine) as session:
            row = session.get(AgentIdempotencyKey, key, with_for_update=True)
            if row is None:
                row = AgentIdempotencyKey(key=key, run_id=run_id, subtask_id=subtask_id, attempts=0)
                session.add(row)
            row.attempts += 1
            return row.attempts, row.output

    def complete_call(self, key: str, output: dict[str, Any]) -> None:
        """Record the finished call's output: a later attempt returns it instead of calling again."""
        with session_scope(self.engine) as session:
            row = session.get(AgentIdempotencyKey, key)
            if row is not None:
                row.output, row.completed_at = output, datetime.now(UTC)

    def save_snapshot(self, snapshot_id: str, run_id: str, data: dict[str, Any]) -> None:
        """Insert or replace a snapshot."""
        self._upsert(
            AgentSnapshot.metadata.tables[AgentSnapshot.__tablename__],
            ("snapshot_id",),
            {"snapshot_id": snapshot_id, "run_id": run_id, "data": data},
        )

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """A stored snapshot; RunNotFound when absent."""
        with session_scope(self.engine) as session:
            row = session.get(AgentSnapshot, snapshot_id)
            if row is None:
                raise RunNotFound(f"no snapshot {snapshot_id}")
            run = session.get(AgentRun, row.run_id)
            # The run's outcome is read with the snapshot rather than copied into it: one write less per run.
            outcome = {"status": run.status, "output": run.output, "error": run.error} if run else {}
            return {**row.data, **outcome}

    def stalled_runs(self, statuses: frozenset[str], idle_since: datetime, limit: int = 100) -> list[RunRecord]:
        """Runs in `statuses` whose row, stages and results have not changed since `idle_since`, oldest first."""
        stage_moved = select(AgentStage.id).where(
            AgentStage.run_id == AgentRun.run_id,
            or_(AgentStage.started_at >= idle_since, AgentStage.ended_at >= idle_since),
        )
        result_moved = select(AgentSubtaskResult.id).where(
            AgentSubtaskResult.run_id == AgentRun.run_id, AgentSubtaskResult.updated_at >= idle_since
        )
        query = (
            select(AgentRun)
            .where(AgentRun.status.in_(sorted(statuses)), AgentRun.updated_at < idle_since)
            .where(~exists(stage_moved), ~exists(result_moved))
            .order_by(AgentRun.updated_at)
            .limit(limit)
        )
        with session_scope(self.engine) as session:
            return [self._record(session, run) for run in session.scalars(query)]

    def resumes(self, run_id: str) -> int:
        """How many times the sweep resumed the run (its `run_resumed` audit events)."""
        query = select(func.count()).where(
            AuditEvent.category == "agent", AuditEvent.action == "run_resumed", AuditEvent.subject == run_id
        )
        with session_scope(self.engine) as session:
            return int(session.scalar(query) or 0)

    def note_resume(self, run_id: str, status: str) -> None:
        """Audit the resume and mark the run changed, so the next sweep gives the resumed stages time."""
        with session_scope(self.engine) as session:
            session.execute(update(AgentRun).where(AgentRun.run_id == run_id).values(updated_at=datetime.now(UTC)))
            audit.record(session, "agent", "run_resumed", run_id, actor="sweep", status=status)

    def conversation_runs(self, conversation_id: str, before: datetime, limit: int = 50) -> list[RunRecord]:
        """The newest `limit` runs of a conversation created before `before`, oldest first."""
        query = (
            select(AgentRun)
            .where(AgentRun.conversation_id == conversation_id, AgentRun.created_at < before)
            .order_by(AgentRun.created_at.desc())
            .limit(limit)
        )
        with session_scope(self.engine) as session:
            return [self._record(session, run) for run in reversed(session.scalars(query).all())]

    def conversation_turns(self, conversation_id: str, before: datetime, limit: int = 50) -> list[Turn]:
        """The newest `limit` runs of a conversation created before `before`, as turns, oldest first."""
        return [turn_of(r) for r in self.conversation_runs(conversation_id, before, limit)]

    def drop_unfinished_results(self, run_id: str) -> list[str]:
        """Forget the run's subtask results that did not succeed (so a resumed run calls them again); their ids."""
        with session_scope(self.engine) as session:
            rows = session.scalars(select(AgentSubtaskResult).where(
                AgentSubtaskResult.run_id == run_id, AgentSubtaskResult.status != "succeeded"
            )).all()  # fmt: skip
            for row in rows:
                session.delete(row)
            return sorted(row.subtask_id for row in rows)

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first, as short summaries."""
        with session_scope(self.engine) as session:
            rows = session.scalars(select(AgentRun).order_by(AgentRun.created_at.desc()).limit(limit)).all()
            return [{"run_id": r.run_id, "status": r.status, "input": r.request.get("input", "")[:80],
                     "created_at": _aware(r.created_at).isoformat() if r.created_at else None} for r in rows]  # fmt: skip

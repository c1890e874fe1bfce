"""Tables of the agents domain: runs, stages, subtask results, snapshots, idempotency keys, task ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worker.db import Base
from worker.models.core import utcnow


class AgentRun(Base):
    """One workflow run: its request, state (with a timestamp per state reached) and final output."""

    __tablename__ = "agent_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The request's input as plain text, for the run list's text search (reading it out of the JSON costs a parse
    # per row); None for runs recorded before agents_0003 by a worker that did not write it yet.
    input_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    queue: Mapped[str] = mapped_column(String(64), default="agents")
    # The visible id of the API key that submitted the run (None: the CLI, a plain producer, or before 0002).
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The conversation the run is a turn of (agents_0003); None for a run on its own.
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The OpenTelemetry trace id the run was started in (None when traces are off, or before agents_0003).
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    timeline: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        # The run list pages newest first by (created_at, run_id), optionally within a status or a key's runs.
        Index("ix_agent_runs_created_run", "created_at", "run_id"),
        Index("ix_agent_runs_status_created_run", "status", "created_at", "run_id"),
        Index("ix_agent_runs_owner_created_run", "owner", "created_at", "run_id"),
        Index("ix_agent_runs_conversation", "conversation_id", "created_at"),
    )


class AgentConversation(Base):
    """A conversation: the runs that name it are its turns, in the order they were created."""

    __tablename__ = "agent_conversations"

    conversation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The API key that created it (None: the CLI); only it, or `operator`, reads it and adds turns.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_agent_conversations_owner", "owner", "created_at"),)


class AgentStage(Base):
    """One stage of a run: status, output, timing, tokens and cost."""

    __tablename__ = "agent_stages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("agent_runs.run_id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (UniqueConstraint("run_id", "stage", name="uq_agent_stages_run_stage"),)


class AgentSubtaskResult(Base):
    """What one subtask of a run produced, or why it did not."""

    __tablename__ = "agent_subtask_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("agent_runs.run_id", ondelete="CASCADE"))
    subtask_id: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("run_id", "subtask_id", name="uq_agent_subtask_results_run_subtask"),)


class AgentSnapshot(Base):
    """The config snapshot of a run, enough to replay it."""

    __tablename__ = "agent_snapshots"

    snapshot_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentIdempotencyKey(Base):
    """A side-effecting tool call: its attempts and, once it finished, its output (never called again)."""

    __tablename__ = "agent_idempotency_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    subtask_id: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AgentTask(Base):
    """A Celery task id of a run (stage or subtask), so cancel can revoke what is queued or running."""

    __tablename__ = "agent_tasks"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)

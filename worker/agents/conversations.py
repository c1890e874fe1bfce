"""Conversations in SQL: created, listed, read; their turns are the runs that name them (agent_runs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from agents.errors import ConversationNotFound
from worker import audit
from worker.agents.models import AgentConversation
from worker.db import session_scope


def _row(row: AgentConversation) -> dict[str, Any]:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return {"conversation_id": row.conversation_id, "title": row.title, "owner": row.owner,
            "created_at": created.isoformat()}  # fmt: skip


def create(title: str = "", owner: str | None = None) -> dict[str, Any]:
    """A new conversation, owned by the API key that created it (None: the CLI)."""
    row = AgentConversation(conversation_id=uuid.uuid4().hex, title=title, owner=owner, created_at=datetime.now(UTC))
    with session_scope() as session:
        session.add(row)
        audit.record(session, "agent", "conversation_created", row.conversation_id, actor=owner or "cli")
        session.flush()
        return _row(row)


def get(conversation_id: str) -> dict[str, Any]:
    """One conversation; ConversationNotFound when absent."""
    with session_scope() as session:
        row = session.get(AgentConversation, conversation_id)
        if row is None:
            raise ConversationNotFound(f"no conversation {conversation_id}")
        return _row(row)


def list_(owner: str | None, every: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """The newest conversations of `owner` (or of everyone with `every`), newest first."""
    query = select(AgentConversation).order_by(AgentConversation.created_at.desc()).limit(limit)
    if not every:
        query = (
            query.where(AgentConversation.owner == owner) if owner else query.where(AgentConversation.owner.is_(None))
        )
    with session_scope() as session:
        return [_row(row) for row in session.scalars(query)]

"""Conversations as a service: what `agent chat` and `/api/v1/conversations` call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.conversation import turn_of
from agents.errors import ConversationNotFound
from agents.models import WorkflowRequest
from gateway.services import agents as runs
from worker.agents import conversations as store
from worker.agents.ports import build_ports
from worker.agents.store import SqlRunStore

# The most turns a conversation's read returns (the newest); its runs' own records hold everything.
MAX_TURNS = 200


def create(title: str = "", owner: str | None = None) -> dict[str, Any]:
    """A new conversation owned by `owner` (an API key's id; None: the CLI)."""
    return store.create(title, owner)


def conversations(owner: str | None, every: bool = False) -> list[dict[str, Any]]:
    """The owner's conversations (everyone's with `every`), newest first."""
    return store.list_(owner, every)


def get(conversation_id: str, owner: str | None = None, every: bool = True) -> dict[str, Any]:
    """The conversation with its turns, oldest first; ConversationNotFound for another owner's (unless `every`)."""
    found = store.get(conversation_id)
    if not every and found["owner"] != owner:
        raise ConversationNotFound(f"no conversation {conversation_id}")
    later = datetime.now(UTC) + timedelta(days=1)
    run_store = build_ports().store
    assert isinstance(run_store, SqlRunStore)  # the API's ports are the SQL ones
    records = run_store.conversation_runs(conversation_id, later, MAX_TURNS)
    turns = []
    for record in records:
        turn = turn_of(record).model_dump()
        created = record.created_at.isoformat() if record.created_at else None
        turns.append({**turn, "error": record.error, "created_at": created})
    return {**found, "turns": turns}


def post_turn(
    conversation_id: str,
    text: str,
    *,
    profile: str = "local",
    options: dict[str, Any] | None = None,
    scopes: Sequence[str] = runs.OPERATOR_SCOPES,
    owner: str | None = None,
    every: bool = True,
) -> str:
    """Submit the next turn (a run naming the conversation); its run id. The conversation must be the owner's."""
    found = store.get(conversation_id)
    if not every and found["owner"] != owner:
        raise ConversationNotFound(f"no conversation {conversation_id}")
    request = WorkflowRequest(input=text, profile=profile, options=options or {}, conversation_id=conversation_id)
    return runs.submit(request, scopes, owner=owner)

"""What each API key spent on models today, summed from the runs' stages (exact: the stored tokens and cost)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time

from sqlalchemy import func, select

from agents.budgets import BudgetsConfig, Spending
from agents.models import Usage
from worker.agents.models import AgentRun, AgentStage
from worker.db import session_scope


def day_start(now: datetime | None = None) -> datetime:
    """00:00 UTC of today: budgets are per UTC day."""
    now = now or datetime.now(UTC)
    return datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)


def spent_today(owners: Iterable[str] | None = None, now: datetime | None = None) -> dict[str, Usage]:
    """Tokens and cost of the runs each key submitted today (UTC), by key id; keys that spent nothing are absent."""
    query = (
        select(
            AgentRun.owner,
            func.coalesce(func.sum(AgentStage.prompt_tokens), 0),
            func.coalesce(func.sum(AgentStage.completion_tokens), 0),
            func.coalesce(func.sum(AgentStage.cost), 0.0),
        )
        .join(AgentStage, AgentStage.run_id == AgentRun.run_id)
        .where(AgentRun.owner.is_not(None), AgentRun.created_at >= day_start(now))
        .group_by(AgentRun.owner)
    )
    if owners is not None:
        query = query.where(AgentRun.owner.in_(sorted(set(owners))))
    with session_scope() as session:
        rows = session.execute(query).all()
    return {
        str(owner): Usage(prompt_tokens=int(p), completion_tokens=int(c), cost=round(float(cost), 6))
        for owner, p, c, cost in rows
    }


def spending(key_id: str, budgets: BudgetsConfig) -> Spending:
    """One key's spending today against its budget."""
    return Spending(key_id, spent_today([key_id]).get(key_id, Usage()), budgets.for_key(key_id))

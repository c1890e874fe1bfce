"""Budgets per API key: tokens and money a key may spend on models per day, and what happens past them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.models import Usage

OverBudget = Literal["reject", "cheaper", "hold"]


class Budget(BaseModel):
    """One key's daily allowance (UTC days); a limit left out is no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_day: int | None = Field(default=None, ge=0)
    cost_per_day: float | None = Field(default=None, ge=0)
    # Past a limit: refuse the run (`budget_exceeded`), run it on `cheaper_profile`, or hold it for a person.
    over: OverBudget = "reject"
    cheaper_profile: str = Field(default="local", pattern=r"^[a-z][a-z0-9_-]{0,31}$")


class BudgetsConfig(BaseModel):
    """`agents.budgets`: a budget per key id, and the default for every other key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Budget | None = None
    keys: dict[str, Budget] = Field(default_factory=dict)

    def for_key(self, key_id: str) -> Budget | None:
        """The key's own budget, else the default (None: unlimited)."""
        return self.keys.get(key_id, self.default)


@dataclass(frozen=True)
class Spending:
    """What a key spent today against its budget."""

    key_id: str
    used: Usage
    budget: Budget | None

    @property
    def over(self) -> str | None:
        """Which limit is reached, in words; None while within budget."""
        b = self.budget
        if b is None:
            return None
        if b.tokens_per_day is not None and self.used.total_tokens >= b.tokens_per_day:
            return f"{self.used.total_tokens} of {b.tokens_per_day} tokens"
        if b.cost_per_day is not None and self.used.cost >= b.cost_per_day:
            return f"cost {self.used.cost:g} of {b.cost_per_day:g}"
        return None

    def describe(self) -> dict[str, object]:
        """The spending as `agent keys list --json` and the API show it."""
        b = self.budget
        return {"tokens_today": self.used.total_tokens, "cost_today": round(self.used.cost, 6),
                "tokens_per_day": b.tokens_per_day if b else None, "cost_per_day": b.cost_per_day if b else None,
                "over_budget": self.over is not None}  # fmt: skip

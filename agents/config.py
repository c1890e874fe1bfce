"""The `agents` section of FLEET_CONFIG, validated; every key is documented in docs/agents.md."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.errors import ConfigError
from agents.models import AGENT_QUEUE_PATTERN
from config_sections import validate_section

DEFAULT_TABLES = (
    "agent_runs",
    "agent_stages",
    "agent_subtask_results",
    "audit_events",
    "ledger_accounts",
    "ledger_events",
)
DEFAULT_PROTECTED_TERMS = ("race", "religion", "ethnicity", "인종", "종교", "민족")


class OpenAISettings(BaseModel):
    """Where the `openai` profile sends its chat-completions request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "FLEET_OPENAI_API_KEY"
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 7
    timeout_s: float = Field(default=30.0, gt=0)
    # Price per 1000 tokens, to record a cost per stage.
    prompt_price_per_1k: float = Field(default=0.0, ge=0)
    completion_price_per_1k: float = Field(default=0.0, ge=0)


class AgentsConfig(BaseModel):
    """Limits, policy and tool settings of the agent workflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_subtasks: int = Field(default=8, ge=1, le=64)
    max_budget_tokens: int = Field(default=20_000, ge=0)
    blocked_tools: tuple[str, ...] = ()
    blocked_patterns: tuple[str, ...] = ()
    review_tools: tuple[str, ...] = ()
    review_patterns: tuple[str, ...] = ()
    protected_terms: tuple[str, ...] = DEFAULT_PROTECTED_TERMS
    sql_tables: tuple[str, ...] = DEFAULT_TABLES
    sql_row_limit: int = Field(default=100, ge=1, le=10_000)
    sql_timeout_ms: int = Field(default=2_000, ge=10)
    # The most JSON one sql.query result may hold, and (SQLite) the longest string or blob a statement may build.
    sql_max_result_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    cache_ttl_s: int = Field(default=600, ge=0)
    subtask_time_limit_s: int = Field(default=30, ge=1, le=300)
    tool_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.2, ge=0.0, le=60.0)
    queue: str = Field(default="agents", pattern=AGENT_QUEUE_PATTERN)
    # A run in flight with no change for this long is resumed by the sweep (its remaining stages sent again):
    # longer than the longest subtask, else a slow one is run twice (harmless, idempotent, but wasted).
    stall_after_s: int = Field(default=600, ge=2)
    max_resumes: int = Field(default=3, ge=0, le=100)
    sweep_every_s: float = Field(default=60.0, gt=0)
    tool_modules: tuple[str, ...] = ()
    openai: OpenAISettings = OpenAISettings()
    # A held run with no decision for this long is ended by the sweep with `approval_expiry_action`.
    approval_timeout_s: int = Field(default=86_400, ge=1)
    approval_expiry_action: Literal["reject", "cancel"] = "reject"
    # The API key that submitted a run cannot approve it (four eyes); it may still reject or cancel it.
    approval_forbid_self: bool = True

    @model_validator(mode="after")
    def _stall_outlasts_a_subtask(self) -> AgentsConfig:
        if self.stall_after_s <= self.subtask_time_limit_s:
            raise ValueError(
                f"stall_after_s ({self.stall_after_s}) must exceed subtask_time_limit_s ({self.subtask_time_limit_s})"
            )
        return self

    @field_validator("blocked_patterns", "review_patterns")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
        return value


def load_config(section: dict[str, Any]) -> AgentsConfig:
    """Validate the section; a bad value raises ConfigError naming the key."""
    return validate_section(AgentsConfig, "agents", section, ConfigError)

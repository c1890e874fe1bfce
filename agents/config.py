"""The `agents` section of FLEET_CONFIG, validated; every key is documented in docs/agents.md."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.breaker import BreakerSettings
from agents.budgets import BudgetsConfig
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


class Endpoint(BaseModel):
    """One OpenAI-compatible endpoint of a failover chain; a key left out takes the `openai` section's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    prompt_price_per_1k: float | None = Field(default=None, ge=0)
    completion_price_per_1k: float | None = Field(default=None, ge=0)


class OpenAISettings(BaseModel):
    """Where the `openai` profile sends its chat-completions request: one endpoint, or a chain tried in order."""

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
    # Endpoints tried in order (each behind its own circuit breaker); empty: the one endpoint above.
    chain: tuple[Endpoint, ...] = ()
    # Attempts after the first on one endpoint (timeouts, 5xx, 429), with jittered exponential backoff.
    retries: int = Field(default=1, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.2, ge=0.0, le=30.0)
    # The whole planning call, retries and failover included: well inside the analyze stage's time limit.
    deadline_s: float = Field(default=120.0, gt=0, le=280)

    @field_validator("chain")
    @classmethod
    def _names_unique(cls, chain: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        names = [e.name for e in chain]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique, got {names}")
        return chain


# The prefixes of the built-in tools' names: an MCP server of that name would shadow them.
BUILTIN_PREFIXES = frozenset({"math", "sql", "text", "ledger", "system"})


class McpServer(BaseModel):
    """An MCP server whose tools join the registry as `<name>.<tool>` (`agents.mcp_servers`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    transport: Literal["stdio", "http"]
    # stdio: the command that starts the server (one process per call); http: the streamable HTTP endpoint.
    command: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    version: str = Field(default="v1", pattern=r"^v[0-9]{1,3}$")
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Only these tools of the server are registered (empty: all it lists).
    tools: tuple[str, ...] = ()
    # Tools free of side effects besides those the server marks readOnlyHint; every other one has side effects.
    read_only: tuple[str, ...] = ()
    # Side-effecting tools wait for a person's approval (and need `scope`, admin by default, on the run).
    approval: bool = True
    scope: str | None = None
    # The most JSON one call's output may hold (it is stored with the run).
    max_output_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)

    @model_validator(mode="after")
    def _transport_has_its_address(self) -> McpServer:
        if self.name in BUILTIN_PREFIXES:
            raise ValueError(f"MCP server name {self.name!r} is taken by the fleet's own tools ({self.name}.*)")
        if self.transport == "stdio" and not self.command:
            raise ValueError(f"MCP server {self.name}: stdio needs a command")
        if self.transport == "http" and not self.url:
            raise ValueError(f"MCP server {self.name}: http needs a url")
        return self


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
    mcp_servers: tuple[McpServer, ...] = ()
    # How many tokens of earlier turns a conversation's run sees; older turns become one summary line.
    conversation_tokens: int = Field(default=2_000, ge=50, le=100_000)
    openai: OpenAISettings = OpenAISettings()
    breaker: BreakerSettings = BreakerSettings()
    budgets: BudgetsConfig = BudgetsConfig()
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

    @field_validator("mcp_servers")
    @classmethod
    def _server_names_unique(cls, servers: tuple[McpServer, ...]) -> tuple[McpServer, ...]:
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"MCP server names must be unique, got {names}")
        return servers

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

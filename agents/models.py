"""The shapes of the agent workflow: request, plan, verdict, stage outputs and the run record."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

RunStatus = Literal[
    "pending",
    "analyzing",
    "gated",
    "awaiting_approval",
    "executing",
    "verifying",
    "succeeded",
    "rejected",
    "failed",
    "cancelled",
]
RUN_STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]
TERMINAL_STATUSES = frozenset({"succeeded", "rejected", "failed", "cancelled"})
STAGES: tuple[str, ...] = ("analyze", "gate", "execute", "verify")
Decision = Literal["approve", "reject", "needs_human"]
SubtaskStatus = Literal["succeeded", "failed", "skipped"]
# The queues a run's stages may go to: the fleet's own agents queues, never an arbitrary Redis key (a producer's
# queue name is the Redis list the message is pushed onto).
AGENT_QUEUE_PATTERN = r"^agents(-[a-z0-9]{1,50})?$"


class Frozen(BaseModel):
    """Immutable, strict-shaped model: unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkflowRequest(Frozen):
    """What a producer sends to `agents.run_workflow` (shape in DESIGN.md)."""

    input: str = Field(min_length=1, max_length=20_000)
    mode: Literal["planner", "plan_only"] = "planner"
    profile: str = Field(default="local", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    options: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    # The conversation the run is a turn of: its analyst sees the earlier turns (agents/conversation.py).
    conversation_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The scopes granted to the API key that submitted the run (the gateway sets them, whatever the body said);
    # None from a producer that is not the API: its side-effecting subtasks wait for a person's approval.
    scopes: tuple[str, ...] | None = Field(
        default=None, max_length=16, description="Set by the gateway from the submitting API key; a body's is replaced."
    )

    @field_validator("options")
    @classmethod
    def _options_are_safe(cls, options: dict[str, Any]) -> dict[str, Any]:
        queue = options.get("queue")
        if queue is not None and not (isinstance(queue, str) and re.fullmatch(AGENT_QUEUE_PATTERN, queue)):
            raise ValueError(f"queue must be 'agents' or 'agents-<name>' (a-z, 0-9), got {str(queue)[:80]!r}")
        if not _finite(options):
            raise ValueError("numbers must be finite (NaN and infinity are not JSON)")
        return options

    @model_validator(mode="after")
    def _storable(self) -> WorkflowRequest:
        """Refuse text no store can hold (it was stored, and the run's status failed for good)."""
        for name in ("input", "options", "idempotency_key"):
            where = unstorable_path(getattr(self, name), name)
            if where is not None:
                raise PydanticCustomError(
                    "invalid_text", "{where} holds a lone surrogate or NUL, not storable text", {"where": where}
                )
        return self


def _finite(value: Any) -> bool:
    """Whether every number inside a JSON-like value is finite."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def unstorable_path(value: Any, where: str) -> str | None:
    """The path of the first string of a JSON value (a key or a value) holding a lone surrogate or a NUL: text
    that UTF-8 cannot encode, or that PostgreSQL's text refuses."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str) and ("\x00" in item or _lone_surrogate(item)):
            return path.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in pairs:
            stack += [(child, f"{path}.{key}"), (key, f"{path}.{key}")]
    return None


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Subtask(Frozen):
    """One tool call of a plan; `depends_on` names subtasks whose outputs it receives."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    tool: str = Field(min_length=1, max_length=64)
    version: str = Field(default="v1", pattern=r"^v[0-9]{1,3}$")
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    @property
    def tool_ref(self) -> str:
        """`name:version`, as the registry and the docs spell it."""
        return f"{self.tool}:{self.version}"


class Usage(Frozen):
    """Tokens and cost a stage spent on a model."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    # The endpoint (`name:model`) that answered, and what failed before it; None for the local planner.
    provider: str | None = None
    failovers: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class Plan(Frozen):
    """Sena's answer: what the request wants and the tool calls that serve it."""

    intent: str
    language: Literal["en", "ko"] = "en"
    subtasks: tuple[Subtask, ...] = ()
    tools: tuple[str, ...] = ()
    rationale: str = ""


class Verdict(Frozen):
    """Lubit's decision on a plan, with its reasons and the run's priority."""

    decision: Decision
    reasons: tuple[str, ...] = ()
    priority: int = Field(default=5, ge=0, le=9)


class SubtaskResult(Frozen):
    """What running one subtask produced (or why it did not)."""

    subtask_id: str
    tool: str
    version: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: SubtaskStatus
    output: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    duration_ms: float = 0.0
    idempotency_key: str | None = None


class Check(Frozen):
    """One of RUNE's checks: passed or not, a score in [0, 1] and the evidence."""

    name: Literal["transparency", "cooperation", "autonomy", "fairness"]
    passed: bool
    score: float = Field(ge=0.0, le=1.0)
    evidence: tuple[str, ...] = ()


class Verification(Frozen):
    """RUNE's report: every check, and whether all passed."""

    passed: bool
    checks: tuple[Check, ...]


class StageOutput(Frozen):
    """One stage's record: its status, output, timing and model usage."""

    stage: Literal["analyze", "gate", "execute", "verify"]
    status: Literal["running", "succeeded", "failed", "skipped"]
    output: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float = 0.0
    usage: Usage = Usage()
    task_id: str | None = None


class RunRecord(Frozen):
    """A run as producers and operators see it."""

    run_id: str
    status: RunStatus
    request: WorkflowRequest
    priority: int = 5
    queue: str = "agents"
    # The API key (its visible id) that submitted the run; None for the CLI and plain Celery producers.
    owner: str | None = None
    # The OpenTelemetry trace the run was started in (worker/otel.py), None when traces are off.
    trace_id: str | None = None
    stages: tuple[StageOutput, ...] = ()
    subtasks: tuple[SubtaskResult, ...] = ()
    output: dict[str, Any] | None = None
    error: str | None = None
    snapshot_id: str | None = None
    timeline: dict[str, datetime] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def stage(self, name: str) -> StageOutput | None:
        """The record of one stage, None when it has not run."""
        return next((stage for stage in self.stages if stage.stage == name), None)

    @property
    def finished(self) -> bool:
        """True once the run reached a terminal status."""
        return self.status in TERMINAL_STATUSES

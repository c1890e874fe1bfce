"""Errors of the agents package; each docstring is its default message."""

from __future__ import annotations


class AgentError(Exception):
    """The agent workflow could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(AgentError):
    """The `agents` section of FLEET_CONFIG is invalid."""


class PlanError(AgentError):
    """The plan is malformed."""


class ProfileError(AgentError):
    """The model profile could not produce a plan."""


class RunNotFound(AgentError):
    """No run has that id."""


class BudgetExceeded(AgentError):
    """The API key spent its model budget for today; it resets at 00:00 UTC."""


class ConversationNotFound(AgentError):
    """No conversation has that id."""


class RequestInvalid(AgentError):
    """The workflow request is invalid."""


class IdempotencyKeyConflict(AgentError):
    """This idempotency_key belongs to a run of another API key; use a key of your own (a UUID)."""


class InvalidTransition(AgentError):
    """The run is not in a state that allows this action."""


class SubtaskRefused(AgentError):
    """The subtask message is not a subtask of the run's approved plan; nothing ran."""


class ToolError(AgentError):
    """The tool failed; retrying will not help."""


class ToolTransientError(ToolError):
    """The tool failed for a reason that may pass; the call can be retried."""


class ToolInputError(ToolError):
    """The tool refused its arguments."""


class ToolNotFound(ToolError):
    """No tool is registered under that name and version."""


class ToolUnavailable(ToolError):
    """The tool's backend is not installed or not configured in this process."""

"""Errors of the operator's actions (runs in bulk, dead letters, failed tasks, approvals), each with its status.

Each has its status and code in gateway/problems.py's DOMAIN_ERRORS, the one table of the exception handler.
"""

from __future__ import annotations


class OperationError(Exception):
    """The operator's action cannot be carried out."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class CountChanged(OperationError):
    """The filter now matches another number of items than the dry run counted: count again."""


class InvalidCursor(OperationError):
    """The cursor is not one this API handed out."""


class DeadLetterNotFound(OperationError):
    """No dead letter has this id."""


class NotRequeueable(OperationError):
    """The dead letter holds no message a worker could take: its bytes are not a task message."""


class FailedTaskNotFound(OperationError):
    """No failed task with this id is kept in the result backend."""


class SelfApproval(OperationError):
    """The key that submitted a run cannot approve it (agents.approval_forbid_self)."""


class PlanChanged(OperationError):
    """The plan changed since it was shown: review the new plan and decide on its digest."""


class NotResumable(OperationError):
    """The run cannot be resumed from that stage."""


class AccountNotFound(OperationError):
    """The shadow ledger has no such account."""

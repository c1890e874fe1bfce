"""Errors of the operator's actions (runs in bulk, dead letters, failed tasks, approvals), each with its status.

`STATUS` is the explicit error -> (HTTP status, stable code) table of these errors; gateway/api.py adds it to
the one exception handler's table.
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


STATUS: dict[type[BaseException], tuple[int, str]] = {
    CountChanged: (409, "count_changed"),
    InvalidCursor: (422, "invalid_cursor"),
    DeadLetterNotFound: (404, "dead_letter_not_found"),
    NotRequeueable: (409, "not_requeueable"),
    FailedTaskNotFound: (404, "failed_task_not_found"),
    SelfApproval: (403, "self_approval_forbidden"),
    PlanChanged: (409, "plan_changed"),
    NotResumable: (409, "not_resumable"),
    AccountNotFound: (404, "account_not_found"),
    OperationError: (400, "operation_failed"),
}

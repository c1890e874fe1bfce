"""Errors as RFC 9457 `application/problem+json`, from one handler that maps domain errors to HTTP."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from celery.exceptions import TimeoutError as ResultTimeout
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError as SqlOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agents.errors import (
    AgentError,
    BudgetExceeded,
    ConversationNotFound,
    IdempotencyKeyConflict,
    InvalidTransition,
    PlanError,
    ProfileError,
    RequestInvalid,
    RunNotFound,
    SubtaskRefused,
    ToolError,
    ToolInputError,
    ToolNotFound,
    ToolTransientError,
    ToolUnavailable,
)
from agents.errors import ConfigError as AgentConfigError
from beat.errors import (
    NotificationFailed,
    PatternError,
    ReportConfigError,
    ReportDateInvalid,
    ReportError,
    ReportNotFound,
    ScheduleAlreadyExists,
    ScheduleInvalid,
    ScheduleNotFound,
)
from gateway.keys import UnknownScope
from gateway.services.errors import (
    AccountNotFound,
    CountChanged,
    DeadLetterNotFound,
    FailedTaskNotFound,
    InvalidCursor,
    NotRequeueable,
    NotResumable,
    OperationError,
    PlanChanged,
    SelfApproval,
)
from gateway.services.keys import KeyNotFound
from ledger import ConfigError as LedgerConfigError
from ledger import LedgerError
from ledger.quickrun import StoreConflict
from worker.backup_archive import BackupError, BackupInvalid, RestoreRefused, SchemaMismatch
from worker.errors import BrokerUnavailable, DatabaseUnavailable, FleetError, SettingsError, WorkersUnavailable

log = logging.getLogger("fleet.api")

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "https://agent-fleet.dev/problems/"


class ApiProblem(Exception):
    """The request cannot be served."""

    def __init__(
        self, status: int, code: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


# Every error the API answers with, by class: (HTTP status, stable code). The code names the problem
# `type` (TYPE_BASE + code); the status gives its `title`. A class not listed answers as its nearest listed
# parent (looked up along the MRO); tests/unit/test_gateway_problems.py checks every domain error is listed.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    # agents/
    AgentError: (400, "agent_error"),
    AgentConfigError: (400, "config_error"),
    PlanError: (422, "plan_error"),
    ProfileError: (422, "profile_error"),
    RunNotFound: (404, "run_not_found"),
    ConversationNotFound: (404, "conversation_not_found"),
    BudgetExceeded: (429, "budget_exceeded"),
    RequestInvalid: (422, "request_invalid"),
    IdempotencyKeyConflict: (409, "idempotency_key_conflict"),
    InvalidTransition: (409, "invalid_transition"),
    SubtaskRefused: (400, "subtask_refused"),
    ToolError: (400, "tool_error"),
    ToolTransientError: (503, "tool_transient_error"),
    ToolInputError: (422, "tool_input_error"),
    ToolNotFound: (404, "tool_not_found"),
    ToolUnavailable: (503, "tool_unavailable"),
    # ledger/
    LedgerError: (400, "ledger_error"),
    LedgerConfigError: (400, "config_error"),
    StoreConflict: (409, "store_conflict"),
    # beat/ (the reports domain)
    ReportError: (400, "report_error"),
    ReportConfigError: (400, "report_config_error"),
    PatternError: (400, "pattern_error"),
    ReportNotFound: (404, "report_not_found"),
    ReportDateInvalid: (422, "report_date_invalid"),
    NotificationFailed: (400, "notification_failed"),
    # The operator's actions (runs in bulk, dead letters, failed tasks, approvals, resume)
    OperationError: (400, "operation_failed"),
    CountChanged: (409, "count_changed"),
    InvalidCursor: (422, "invalid_cursor"),
    DeadLetterNotFound: (404, "dead_letter_not_found"),
    NotRequeueable: (409, "not_requeueable"),
    FailedTaskNotFound: (404, "failed_task_not_found"),
    SelfApproval: (403, "self_approval_forbidden"),
    PlanChanged: (409, "plan_changed"),
    NotResumable: (409, "not_resumable"),
    AccountNotFound: (404, "account_not_found"),
    ScheduleInvalid: (422, "schedule_invalid"),
    ScheduleNotFound: (404, "schedule_not_found"),
    ScheduleAlreadyExists: (409, "schedule_already_exists"),
    # Backups are made and restored by `agent backup|restore`: a 4xx is exit code 2, the operator's to fix.
    BackupError: (400, "backup_error"),
    BackupInvalid: (422, "backup_invalid"),
    RestoreRefused: (409, "restore_refused"),
    SchemaMismatch: (409, "schema_mismatch"),
    # worker/: the fleet's infrastructure
    FleetError: (503, "fleet_unavailable"),
    SettingsError: (500, "settings_invalid"),
    BrokerUnavailable: (503, "broker_unavailable"),
    DatabaseUnavailable: (503, "database_unavailable"),
    WorkersUnavailable: (503, "workers_unavailable"),
    # gateway/
    KeyNotFound: (404, "key_not_found"),
    UnknownScope: (422, "unknown_scope"),
    # Infrastructure that stopped answering mid-request: the client may retry later.
    SqlOperationalError: (503, "database_unavailable"),
    RedisConnectionError: (503, "broker_unavailable"),
    RedisTimeoutError: (503, "broker_unavailable"),
    BrokerOperationalError: (503, "broker_unavailable"),
    ResultTimeout: (504, "wait_timeout"),
}
# A FLEET_CONFIG section the operator must fix: the CLI exits with the code of unavailable infrastructure (3).
CONFIG_ERRORS: frozenset[type[BaseException]] = frozenset({AgentConfigError, LedgerConfigError, ReportConfigError})
# Domain errors that deliberately answer as their parent does (each named here, so none does by accident).
INHERITED: frozenset[type[BaseException]] = frozenset()
INFRASTRUCTURE = (SqlOperationalError, RedisConnectionError, RedisTimeoutError, BrokerOperationalError)
INTERNAL = (500, "internal_error")

HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def snake(name: str) -> str:
    """`RunNotFound` -> `run_not_found`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def classify(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and stable code of an error: its own entry, its nearest listed parent's, or 500."""
    for cls in type(exc).__mro__:
        found = DOMAIN_ERRORS.get(cls)
        if found is not None:
            return found
    return INTERNAL


def field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """A validation error location as a dotted field name: ('body', 'input') -> 'input'."""
    # A key the client sent is echoed escaped when it is no text (a lone surrogate, NUL): the answer stays UTF-8.
    parts = [str(part).replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode() for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        return ".".join(parts[1:]) if parts[0] == "body" else f"{parts[0]}.{'.'.join(parts[1:])}"
    return ".".join(parts) or "body"


def problem(
    request: Request | None,
    status: int,
    code: str,
    detail: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail or HTTPStatus(status).description,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def _json_position(loc: Any, document: Any) -> str:
    """` at line L, column C` of a JSON decode error's offset (FastAPI's loc is ('body', offset))."""
    offset = loc[-1] if isinstance(loc, tuple | list) and loc else None
    if not isinstance(offset, int) or not isinstance(document, str):
        return ""
    line = document.count("\n", 0, offset) + 1
    column = offset - document.rfind("\n", 0, offset)
    return f" at line {line}, column {column}"


def _error(error: Any, body: Any) -> dict[str, str]:
    """One validation error as `{field, message}`; a body that is not JSON is the body's error, not a field's."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error") or "cannot be parsed"
        return {"field": "body", "message": f"invalid JSON{_json_position(error.get('loc'), body)}: {reason}"}
    return {"field": field_of(error.get("loc", ())), "message": str(error.get("msg", ""))}


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_error(e, exc.body) for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    detail = f"{first['field']}: {first['message']}"
    return problem(request, 422, "validation_failed", detail, errors=errors)


async def handle(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: every error the API answers with goes through here."""
    if isinstance(exc, ApiProblem):
        return problem(request, exc.status, exc.code, exc.detail, exc.headers, **exc.extra)
    if isinstance(exc, RequestValidationError):
        return _validation(request, exc)
    if isinstance(exc, StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, snake(HTTPStatus(exc.status_code).name.title().replace("_", "")))
        detail = exc.detail if isinstance(exc.detail, str) else ""
        return problem(request, exc.status_code, code, detail, dict(exc.headers or {}))
    status, code = classify(exc)
    if status == 503:
        log.warning("request failed: %s", exc, extra={"category": "api", "path": request.url.path})
    elif status >= 500:
        log.error("request failed: %s", exc, exc_info=exc, extra={"category": "api", "path": request.url.path})
    # Infrastructure errors may carry URLs or SQL: the client gets the code, the log gets the detail.
    if (status, code) == INTERNAL:
        detail = "the server could not complete the request"
    elif isinstance(exc, INFRASTRUCTURE):
        detail = code.replace("_", " ")
    else:
        detail = str(exc)
    return problem(request, status, code, detail)


HANDLED: tuple[type[Exception], ...] = (ApiProblem, RequestValidationError, StarletteHTTPException, Exception)

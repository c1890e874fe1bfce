"""Problem mapping: domain errors to HTTP status and stable codes; the gateway config section."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError as SqlOperationalError

from agents.errors import AgentError, RunNotFound
from agents.errors import ConfigError as AgentConfigError
from beat.errors import PatternError, ReportConfigError, ReportDateInvalid, ReportError, ReportNotFound
from gateway.cli_errors import EXIT_UNAVAILABLE, EXIT_USAGE, outcome
from gateway.config import parse_config
from gateway.console.context import SignInRequired
from gateway.middleware import BodyTooLarge
from gateway.problems import DOMAIN_ERRORS, INHERITED, ApiProblem, classify, field_of, snake
from gateway.ratelimit import Decision
from ledger import ConfigError as LedgerConfigError
from ledger import LedgerError
from tests.support import ROOT
from worker.errors import BrokerUnavailable, DatabaseUnavailable, FleetError, SettingsError

# The status and code each domain error had when statuses came from class-name suffixes: a user sees none change.
# One deliberate change: UnknownScope (never raised by a route today) is 422, not 500 `internal_error`.
BEFORE_THE_TABLE: dict[str, tuple[int, str]] = {
    "agents.errors.AgentError": (400, "agent_error"),
    "agents.errors.ConfigError": (400, "config_error"),
    "agents.errors.PlanError": (422, "plan_error"),
    "agents.errors.ProfileError": (422, "profile_error"),
    "agents.errors.RunNotFound": (404, "run_not_found"),
    "agents.errors.RequestInvalid": (422, "request_invalid"),
    "agents.errors.IdempotencyKeyConflict": (409, "idempotency_key_conflict"),
    "agents.errors.InvalidTransition": (409, "invalid_transition"),
    "agents.errors.SubtaskRefused": (400, "subtask_refused"),
    "agents.errors.ToolError": (400, "tool_error"),
    "agents.errors.ToolTransientError": (503, "tool_transient_error"),
    "agents.errors.ToolInputError": (422, "tool_input_error"),
    "agents.errors.ToolNotFound": (404, "tool_not_found"),
    "agents.errors.ConversationNotFound": (404, "conversation_not_found"),
    "agents.errors.BudgetExceeded": (429, "budget_exceeded"),
    "agents.errors.ToolUnavailable": (503, "tool_unavailable"),
    "ledger.LedgerError": (400, "ledger_error"),
    "ledger.ConfigError": (400, "config_error"),
    "ledger.quickrun.StoreConflict": (409, "store_conflict"),
    "beat.errors.ReportError": (400, "report_error"),
    "beat.errors.ReportConfigError": (400, "report_config_error"),
    "beat.errors.PatternError": (400, "pattern_error"),
    "beat.errors.ReportNotFound": (404, "report_not_found"),
    "beat.errors.ReportDateInvalid": (422, "report_date_invalid"),
    "beat.errors.NotificationFailed": (400, "notification_failed"),
    "gateway.services.errors.OperationError": (400, "operation_failed"),
    "gateway.services.errors.CountChanged": (409, "count_changed"),
    "gateway.services.errors.InvalidCursor": (422, "invalid_cursor"),
    "gateway.services.errors.DeadLetterNotFound": (404, "dead_letter_not_found"),
    "gateway.services.errors.NotRequeueable": (409, "not_requeueable"),
    "gateway.services.errors.FailedTaskNotFound": (404, "failed_task_not_found"),
    "gateway.services.errors.SelfApproval": (403, "self_approval_forbidden"),
    "gateway.services.errors.PlanChanged": (409, "plan_changed"),
    "gateway.services.errors.NotResumable": (409, "not_resumable"),
    "gateway.services.errors.AccountNotFound": (404, "account_not_found"),
    "beat.errors.ScheduleInvalid": (422, "schedule_invalid"),
    "beat.errors.ScheduleNotFound": (404, "schedule_not_found"),
    "beat.errors.ScheduleAlreadyExists": (409, "schedule_already_exists"),
    "worker.backup_archive.BackupError": (400, "backup_error"),
    "worker.backup_archive.BackupInvalid": (422, "backup_invalid"),
    "worker.backup_archive.RestoreRefused": (409, "restore_refused"),
    "worker.backup_archive.SchemaMismatch": (409, "schema_mismatch"),
    "worker.errors.FleetError": (503, "fleet_unavailable"),
    "worker.errors.SettingsError": (500, "settings_invalid"),
    "worker.errors.BrokerUnavailable": (503, "broker_unavailable"),
    "worker.errors.DatabaseUnavailable": (503, "database_unavailable"),
    "worker.errors.WorkersUnavailable": (503, "workers_unavailable"),
    "gateway.services.keys.KeyNotFound": (404, "key_not_found"),
    "gateway.keys.UnknownScope": (422, "unknown_scope"),
}
# Exceptions defined under gateway/ that are no domain error: each answers by other means.
NOT_MAPPED = {
    ApiProblem,  # carries its own status and code
    BodyTooLarge,  # answered 413 `payload_too_large` by the body-limit middleware, before any route
    SignInRequired,  # a console page without a session: its own handler redirects to the sign-in page
}
PACKAGES = ("agents", "ledger", "beat", "worker", "gateway")


def _modules() -> list[ModuleType]:
    """Every module of the five packages, imported."""
    found = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        found.append(root)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            found.append(importlib.import_module(info.name))
    return found


def _subclasses(root: type[BaseException]) -> set[type[BaseException]]:
    out, stack = {root}, [root]
    while stack:
        for child in stack.pop().__subclasses__():
            if child.__module__.split(".")[0] in PACKAGES and child not in out:
                out.add(child)
                stack.append(child)
    return out


def domain_errors() -> set[type[BaseException]]:
    """Each package's root error and its subclasses, plus the exceptions gateway/ defines."""
    modules = _modules()
    found: set[type[BaseException]] = set()
    for root in (AgentError, LedgerError, ReportError, FleetError):
        found |= _subclasses(root)
    for module in modules:
        if module.__name__.startswith("gateway"):
            found |= {
                value
                for value in vars(module).values()
                if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__
            }
    return found - NOT_MAPPED


def name_of(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_domain_error_is_in_the_table_or_deliberately_answers_as_its_parent() -> None:
    # Given every domain error class the code base defines
    errors = domain_errors()
    # Then each has its own entry, or is named as answering like its parent (which has one)
    missing = sorted(name_of(e) for e in errors if e not in DOMAIN_ERRORS and e not in INHERITED)
    assert not missing, f"add these to gateway.problems.DOMAIN_ERRORS (or INHERITED): {missing}"
    for error in INHERITED:
        assert error not in DOMAIN_ERRORS and any(parent in DOMAIN_ERRORS for parent in error.__mro__[1:])


def test_no_domain_error_changed_its_status_or_code() -> None:
    # Given the statuses and codes users saw before the table
    errors = {name_of(error): error for error in domain_errors()}
    # Then every domain error is accounted for, and answers as before
    assert sorted(errors) == sorted(BEFORE_THE_TABLE)
    for name, error in errors.items():
        assert classify(error.__new__(error)) == BEFORE_THE_TABLE[name], name


class LedgerStandIn(LedgerError):
    """A subclass nobody listed: answers as its parent."""


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BrokerUnavailable(), 503, "broker_unavailable"),
        (DatabaseUnavailable(), 503, "database_unavailable"),
        (SettingsError(), 500, "settings_invalid"),
        (FleetError(), 503, "fleet_unavailable"),
        (RunNotFound(), 404, "run_not_found"),
        (ReportNotFound(), 404, "report_not_found"),
        (ReportDateInvalid(), 422, "report_date_invalid"),
        (LedgerError(), 400, "ledger_error"),
        (LedgerStandIn(), 400, "ledger_error"),
        (ValueError("boom"), 500, "internal_error"),
        (RedisConnectionError("down"), 503, "broker_unavailable"),
        (SqlOperationalError("SELECT 1", {}, Exception("gone")), 503, "database_unavailable"),
    ],
)
def test_each_error_maps_to_one_status_and_a_stable_code(error: Exception, status: int, code: str) -> None:
    assert classify(error) == (status, code)


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "input"), "input"),
        (("body", "events", 0, "event_id"), "events.0.event_id"),
        (("query", "wait"), "query.wait"),
        (("body",), "body"),
    ],
)
def test_a_validation_location_names_the_failing_field(loc: tuple[object, ...], field: str) -> None:
    assert field_of(loc) == field


def test_class_names_become_snake_case_codes() -> None:
    assert snake("RunNotFound") == "run_not_found"


def test_a_refused_call_is_told_when_to_retry() -> None:
    refused = Decision(allowed=False, limit=3, remaining=0, reset_s=42).headers()
    assert refused["Retry-After"] == "42"
    assert "Retry-After" not in Decision(allowed=True, limit=3, remaining=2, reset_s=42).headers()


def test_a_bad_gateway_setting_is_named_in_the_error() -> None:
    with pytest.raises(SettingsError, match=r"gateway\.rate_limit"):
        parse_config({"rate_limit": 0})
    with pytest.raises(SettingsError, match=r"gateway\.nonsense"):
        parse_config({"nonsense": 1})
    assert parse_config({"cors_origins": ["https://a.example"]}).cors_origins == ["https://a.example"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AgentConfigError(), EXIT_UNAVAILABLE),
        (LedgerConfigError(), EXIT_UNAVAILABLE),
        (ReportConfigError(), EXIT_UNAVAILABLE),
        (BrokerUnavailable(), EXIT_UNAVAILABLE),
        (PatternError(), EXIT_USAGE),
        (ReportNotFound(), EXIT_USAGE),
        (RunNotFound(), EXIT_USAGE),
    ],
)
def test_the_cli_exit_code_of_a_domain_error_follows_the_same_table(error: Exception, code: int) -> None:
    # A bad FLEET_CONFIG section is the operator's to fix, like unavailable infrastructure; the rest is the caller's
    assert outcome(error) == (code, str(error))


def test_the_gateway_page_lists_each_status_and_code_of_the_table() -> None:
    # Given the table rows of docs/gateway.md's errors section (`| status | codes |`)
    text = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d{3}) \| (`.*`) \|$", text, flags=re.MULTILINE))
    # Then every entry of DOMAIN_ERRORS is named under its status
    missing = [
        (status, code) for status, code in set(DOMAIN_ERRORS.values()) if f"`{code}`" not in rows.get(str(status), "")
    ]
    assert not missing, missing

"""Problem mapping: domain errors to HTTP status and stable codes; the gateway config section."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError as SqlOperationalError

from gateway.config import parse_config
from gateway.problems import classify, field_of, snake
from gateway.ratelimit import Decision
from worker.errors import BrokerUnavailable, DatabaseUnavailable, FleetError, SettingsError


class LedgerError(Exception):
    """Stand-in for the ledger package's root error (mapped by name)."""


class EventNotFound(LedgerError):
    """Stand-in."""


class PayloadInvalid(LedgerError):
    """Stand-in."""


class RunNotFound(FleetError):
    """Stand-in for a fleet error with a not-found name."""


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BrokerUnavailable(), 503, "broker_unavailable"),
        (DatabaseUnavailable(), 503, "database_unavailable"),
        (SettingsError(), 500, "settings_invalid"),
        (FleetError(), 503, "fleet_unavailable"),
        (RunNotFound(), 404, "run_not_found"),
        (EventNotFound(), 404, "event_not_found"),
        (PayloadInvalid(), 422, "payload_invalid"),
        (LedgerError(), 400, "ledger_error"),
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

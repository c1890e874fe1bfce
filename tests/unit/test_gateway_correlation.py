"""Every route answers with an X-Correlation-ID: the caller's when valid, a new one otherwise, never hostile bytes."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import api
from gateway.correlation import VALID, correlation_id
from tests.unit.test_gateway_app import call

APP = api.create_app()


def test_a_given_id_is_echoed_and_a_missing_one_is_made() -> None:
    given_id = call(APP, "GET", "/health/live", {"X-Correlation-ID": "order-42"})
    assert given_id.headers["x-correlation-id"] == "order-42"
    made = call(APP, "GET", "/health/live", {})
    assert uuid.UUID(made.headers["x-correlation-id"])


def test_an_unmatched_route_and_an_error_carry_the_id_too() -> None:
    answer = call(APP, "GET", "/no/such/route", {"X-Correlation-ID": "trace-7"})
    assert answer.status_code == 404 and answer.headers["x-correlation-id"] == "trace-7"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_given_becomes_an_id_that_is_safe_to_log_and_echo(text: str) -> None:
    found = correlation_id(text)
    assert VALID.match(found)
    assert found == text or uuid.UUID(found)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=200).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b))
def test_hostile_header_bytes_are_never_echoed(raw: bytes) -> None:
    answer = call(APP, "GET", "/health/live", {"X-Correlation-ID": raw.strip() or b"x"})  # type: ignore[dict-item]
    echoed = answer.headers["x-correlation-id"]
    assert VALID.match(echoed)

"""The run list's cursor: what the API hands out comes back as the same place; anything else is a clear 422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.services.errors import InvalidCursor
from gateway.services.runs import decode_cursor, encode_cursor, utc


@given(st.datetimes(timezones=st.just(UTC)), st.text(max_size=64))
def test_a_cursor_handed_out_comes_back_as_the_same_place(at: datetime, run_id: str) -> None:
    assert decode_cursor(encode_cursor(at, run_id)) == (at, run_id)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_any_other_cursor_is_refused_with_its_reason_never_a_crash(forged: str) -> None:
    try:
        at, run_id = decode_cursor(forged)
    except InvalidCursor:
        return
    assert at.tzinfo is not None and isinstance(run_id, str)


@given(st.datetimes(), st.integers(min_value=-23, max_value=23))
def test_every_moment_has_a_utc_time_even_beyond_what_utc_can_spell(moment: datetime, hours: int) -> None:
    # Given a moment in any offset, year 1 to 9999 (the ends overflow when moved to UTC)
    found = utc(moment.replace(tzinfo=timezone(timedelta(hours=hours))))
    # Then it has a UTC time (clamped at the ends), never an OverflowError
    assert found.tzinfo == UTC

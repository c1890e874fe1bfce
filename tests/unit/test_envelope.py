"""What the transport pops from a queue's list: an envelope kombu can deliver, or junk with its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu import Connection
from kombu.utils.json import dumps

from tests.junk import HUGE, JSON_VALUES, KINDS, broken_envelopes, encode, envelope
from worker.envelope import Junk, open_envelope

# Every reason the transport gives, as docs/RELIABILITY.md lists them.
REASONS = {"too_large", "not_json", "too_deep", "not_an_envelope", "bad_body_encoding", "bad_content_encoding"}


def _delivered(value: dict[str, Any]) -> Any:
    """What kombu and the fleet's QoS do with an envelope before Celery sees it: the message and its unacked record."""
    with Connection("memory://") as connection:
        message = connection.default_channel.Message(value, channel=connection.default_channel)
        delivery = message.delivery_info
        dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        return message


@pytest.mark.parametrize(("reason", "raw"), [*KINDS.values(), HUGE], ids=[*KINDS, "huge"])
def test_each_kind_of_junk_is_refused_with_its_reason(reason: str, raw: bytes) -> None:
    found = open_envelope(raw)
    assert isinstance(found, Junk), found
    assert found.reason == reason, found.detail
    assert found.detail


def test_an_envelope_as_the_fleet_writes_it_is_delivered_unchanged() -> None:
    value = envelope(body=json.dumps([["evt"], {}, {"callbacks": None}]).encode())
    for raw in (encode(value), encode(value).decode()):
        assert open_envelope(raw) == value
    message = _delivered(value)
    assert message.decode() == [["evt"], {}, {"callbacks": None}]


def test_an_envelope_without_body_encoding_or_headers_is_kombus_plain_form() -> None:
    value = envelope()
    value["body"] = '{"n": 1}'
    del value["properties"]["body_encoding"], value["headers"], value["properties"]["priority"]
    assert open_envelope(encode(value)) == value
    assert _delivered(value).decode() == {"n": 1}


def test_junk_names_the_task_when_its_headers_could_be_read() -> None:
    value = envelope(task="ledger.quick_run")
    value["properties"]["body_encoding"] = "rot13"
    found = open_envelope(encode(value))
    assert isinstance(found, Junk)
    assert (found.task_name, found.task_id) == ("ledger.quick_run", value["headers"]["id"])
    assert open_envelope(b"[]") == Junk("not_an_envelope", "a JSON list, not an object")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), JSON_VALUES.map(encode), broken_envelopes()))
def test_no_bytes_make_it_raise_and_whatever_it_delivers_kombu_can_take(raw: bytes) -> None:
    found = open_envelope(raw)
    if isinstance(found, Junk):
        assert found.reason in REASONS and found.detail
    else:
        _delivered(found)


@settings(max_examples=200, deadline=None)
@given(broken_envelopes())
def test_an_envelope_with_a_field_of_the_wrong_type_is_junk(raw: bytes) -> None:
    found = open_envelope(raw)
    assert isinstance(found, Junk)
    assert found.reason in {"not_an_envelope", "bad_body_encoding", "too_deep"}

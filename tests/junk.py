"""Junk for the queues' Redis lists: each kind a careless or hostile producer pushes, and generators of more."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from worker.envelope import MAX_ENVELOPE_BYTES


def envelope(task: str = "fleet.ping", queue: str = "ledger", body: bytes = b"[[], {}, {}]") -> dict[str, Any]:
    """A kombu envelope as the fleet's producers write it (Celery's protocol 2, kombu's Redis transport)."""
    task_id = str(uuid.uuid4())
    return {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None, "retries": 0},
        "properties": {
            "correlation_id": task_id,
            "reply_to": str(uuid.uuid4()),
            "delivery_mode": 2,
            "delivery_info": {"exchange": queue, "routing_key": queue},
            "priority": 5,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


def encode(value: Any) -> bytes:
    """JSON bytes as a producer writes them (NaN and lone surrogates spelt as Python's json does)."""
    return json.dumps(value).encode()


def _with(change: Callable[[dict[str, Any]], None]) -> bytes:
    value = envelope()
    change(value)
    return encode(value)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"n": value}
    return value


# Name -> (the dead-letter reason, the bytes). Every kind the transport reads before Celery does.
KINDS: dict[str, tuple[str, bytes]] = {
    "plain-text": ("not_json", b"junk"),
    "invalid-utf8": ("not_json", b'{"body": "\xff\xfe"}'),
    "truncated-json": ("not_json", encode(envelope())[:-3]),
    "kombu-tag-unreadable": ("not_json", b'{"__type__": "decimal", "__value__": "not a number"}'),
    "json-array": ("not_an_envelope", b"[1, 2, 3]"),
    "json-string": ("not_an_envelope", b'"an envelope"'),
    "json-number": ("not_an_envelope", b"42"),
    "object-without-properties": ("not_an_envelope", b'{"body": "e30=", "headers": {}}'),
    "no-delivery-tag": ("not_an_envelope", _with(lambda e: e["properties"].pop("delivery_tag"))),
    "delivery-tag-object": ("not_an_envelope", _with(lambda e: e["properties"].update(delivery_tag={"a": 1}))),
    "delivery-info-list": ("not_an_envelope", _with(lambda e: e["properties"].update(delivery_info=[]))),
    "no-routing-key": ("not_an_envelope", _with(lambda e: e["properties"]["delivery_info"].pop("routing_key"))),
    "headers-null": ("not_an_envelope", _with(lambda e: e.update(headers=None))),
    "headers-list": ("not_an_envelope", _with(lambda e: e.update(headers=["task", "fleet.ping"]))),
    "body-number": ("not_an_envelope", _with(lambda e: e.update(body=12))),
    "priority-infinite": ("not_an_envelope", _with(lambda e: e["properties"].update(priority=float("inf")))),
    "content-type-number": ("not_an_envelope", _with(lambda e: e.update({"content-type": 7}))),
    "body-encoding-rot13": ("bad_body_encoding", _with(lambda e: e["properties"].update(body_encoding="rot13"))),
    "body-encoding-list": ("bad_body_encoding", _with(lambda e: e["properties"].update(body_encoding=["base64"]))),
    "body-not-base64": ("bad_body_encoding", _with(lambda e: e.update(body="abc"))),
    "body-lone-surrogate": ("bad_body_encoding", _with(lambda e: e.update(body="e30=\ud800"))),
    "content-encoding-utf16": ("bad_content_encoding", _with(lambda e: e.update({"content-encoding": "utf-16"}))),
    "deeply-nested": ("too_deep", b"[" * 100_000 + b"]" * 100_000),
    "deep-headers": ("too_deep", _with(lambda e: e["headers"].update(chain=_nested(300)))),
    "deep-extra-field": ("too_deep", _with(lambda e: e.update(extra=_nested(900)))),
}
# Pushed one at a time: thirty of them would hold a gigabyte in Redis at once.
HUGE: tuple[str, bytes] = ("too_large", b"x" * (MAX_ENVELOPE_BYTES + 1))

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
# A field the envelope needs, and values of a type it cannot have there.
_NOT_STR = JSON_VALUES.filter(lambda v: not isinstance(v, str))
_NOT_DICT = JSON_VALUES.filter(lambda v: not isinstance(v, dict))
_BREAKS: list[tuple[Callable[[dict[str, Any], Any], None], st.SearchStrategy[Any]]] = [
    (lambda e, v: e.update(properties=v), _NOT_DICT),
    (lambda e, v: e["properties"].update(delivery_tag=v), _NOT_STR),
    (lambda e, v: e["properties"].update(delivery_info=v), _NOT_DICT),
    (lambda e, v: e["properties"]["delivery_info"].update(exchange=v), _NOT_STR),
    (lambda e, v: e["properties"]["delivery_info"].update(routing_key=v), _NOT_STR),
    (
        lambda e, v: e["properties"].update(priority=v),
        JSON_VALUES.filter(lambda v: v is not None and type(v) is not int),
    ),
    (lambda e, v: e["properties"].update(body_encoding=v), JSON_VALUES.filter(lambda v: v not in (None, "base64"))),
    (lambda e, v: e.update(body=v), _NOT_STR),
    (lambda e, v: e.update(headers=v), _NOT_DICT),
]


@st.composite
def broken_envelopes(draw: st.DrawFn) -> bytes:
    """A fleet envelope with one field it needs given a value of the wrong type."""
    value = envelope()
    change, wrong = draw(st.sampled_from(_BREAKS))
    change(value, draw(wrong))
    return encode(value)


_TASK_BREAKS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("task", _NOT_STR),
    ("id", _NOT_STR),
    ("root_id", _NOT_STR.filter(lambda v: v is not None)),
    ("shadow", _NOT_STR.filter(lambda v: v is not None)),
    ("eta", _NOT_STR.filter(lambda v: v is not None)),
    ("expires", _NOT_STR.filter(lambda v: v is not None)),
    ("retries", JSON_VALUES.filter(lambda v: v is not None and type(v) is not int)),
    ("timelimit", JSON_VALUES.filter(lambda v: v is not None)),
    ("ignore_result", JSON_VALUES.filter(lambda v: v is not None and type(v) is not bool)),
    ("x_correlation_id", _NOT_STR.filter(lambda v: v is not None)),
]


@st.composite
def broken_tasks(draw: st.DrawFn, marker: str) -> bytes:
    """A fleet envelope whose task message is not Celery's protocol 2: a header of the wrong type, or a body of
    the wrong shape. The marker is in the body, where the dead letter's excerpt shows it."""
    value = envelope(body=encode([[marker], {}, {}]))
    if draw(st.booleans()):
        name, wrong = draw(st.sampled_from(_TASK_BREAKS))
        value["headers"][name] = draw(wrong)
        if name == "timelimit" and isinstance(value["headers"][name], list) and len(value["headers"][name]) == 2:
            value["headers"][name][0] = "never"  # two values are a valid pair, unless one is not seconds
    else:
        body = draw(
            st.sampled_from(
                [{"args": [marker]}, [marker, {}], [[marker], [], {}], [[marker], {}, 5], [[marker], {}, {"chain": 5}]]
            )
        )
        value["body"] = base64.b64encode(encode(body)).decode()
    return encode(value)


JUNK = st.one_of(st.binary(max_size=512), JSON_VALUES.map(encode), broken_envelopes())


def generated(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` values hypothesis generates (shrinking off: they are inputs, not a search for a failure)."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found

"""The fleet's JSON decoder gives exactly what kombu's gives, for every text, and leaves the wire unchanged."""

from __future__ import annotations

import gc
import random
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from kombu.serialization import dumps as kombu_registry_dumps
from kombu.serialization import loads as kombu_registry_loads
from kombu.serialization import registry
from kombu.utils import json as kombu_json

from worker import codec

TAGGED = {
    "when": datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
    "day": date(2026, 11, 21),
    "at": time(10, 30),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "amount": Decimal("12.50"),
    "raw": b"bytes",
    "binary": b"\xff\x00",
}
TEXTS = [
    '{"args": [[{"event_id": "evt-1", "data": {"amount": "12.50"}}], {}, {"callbacks": null}]}',
    '{"a": 1, "a": 2}',
    "[18446744073709551616, -9223372036854775809, 123456789012345678901234567890]",
    "[9223372036854775807, -9223372036854775808, 18446744073709551615]",
    '{"id": "12345678901234567890123"}',
    "[NaN, Infinity, -Infinity]",
    "[1e400]",
    '["\\ud800"]',
    '{"\\u005f_type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678"}}',
    '{"__typ\\u0065__": "decimal", "__value__": "1.5"}',
    '{"__type__": "decimal", "__value__": "1.5", "extra": 1}',
    '{"name": "Ren\\u00e9e", "emoji": "\\ud83d\\ude00", "plain": "caf\u00e9"}',
    "[1.0, -0.0, 0.1, 1e-7, 2.5e+300, 5e-324, 1E5]",
    ' [1, true, false, null, "x"] \n',
    '"just a string"',
    "42",
]
INVALID = ["", "{", "[1,]", "\ufeff[1]", "{'a': 1}", "[1] [2]"]


def _same(found: Any, expected: Any) -> None:
    # repr tells 1 from 1.0 and True from 1, which == does not (and NaN is never equal to itself).
    assert repr(found) == repr(expected)


def _outcome(loads: Any, form: Any) -> tuple[str, str]:
    try:
        return "decoded", repr(loads(form))
    except (ValueError, RecursionError) as exc:
        return "raised", type(exc).__name__


@pytest.mark.parametrize("text", TEXTS)
def test_every_text_decodes_as_kombu_decodes_it(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    for form in (text, raw, bytearray(raw), memoryview(raw)):
        assert _outcome(codec.loads, form) == _outcome(kombu_json.loads, form)
    assert _outcome(codec.loads, text)[0] == "decoded"


def test_kombus_tagged_values_come_back_as_their_types() -> None:
    text = kombu_json.dumps(TAGGED)
    decoded = codec.loads(text)
    assert decoded == kombu_json.loads(text) == TAGGED
    assert isinstance(decoded["id"], uuid.UUID) and isinstance(decoded["amount"], Decimal)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_text_raises_what_kombu_raises(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        codec.loads(text)
    with pytest.raises(ValueError) as kombus:
        kombu_json.loads(text)
    assert type(ours.value) is type(kombus.value)


def test_invalid_utf8_raises_what_kombu_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        codec.loads(b'["\xff"]')
    with pytest.raises(UnicodeDecodeError):
        kombu_json.loads(b'["\xff"]')


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.randint(-(2**70), 2**70) if rng.random() < 0.2 else rng.randint(-1000, 10**6)
    if kind == 1:
        return rng.choice([rng.uniform(-1e6, 1e6), rng.random() * 1e-300, float(rng.randint(0, 9)), -0.0])
    if kind == 2:
        return "".join(rng.choice('aZ09 ._-"\\/\n\té€😀_type') for _ in range(rng.randrange(12)))
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return rng.choice(list(TAGGED.values()))
    if kind == 5:
        return "__type__" if rng.random() < 0.5 else "12345678901234567890"
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["event_id", "__type__", "__value__", "data", "é", "n"]
    return {rng.choice(keys) + str(rng.randrange(3)): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_random_documents_written_by_kombu_decode_the_same() -> None:
    rng = random.Random(8)
    for _ in range(3000):
        text = kombu_json.dumps(_random_value(rng))
        _same(codec.loads(text), kombu_json.loads(text))
        _same(codec.loads(text.encode()), kombu_json.loads(text))


def test_the_garbage_collector_is_running_again_after_a_decode_good_or_bad() -> None:
    assert gc.isenabled()
    codec.loads('{"a": [1, 2]}')
    assert gc.isenabled()
    with pytest.raises(ValueError):
        codec.loads("{")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_application_stays_off() -> None:
    gc.disable()
    try:
        codec.loads('{"a": [1, 2]}')
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_fleet_app_decodes_json_with_the_codec_and_encodes_as_kombu_does() -> None:
    from worker.application import get_app

    app = get_app()

    assert app.conf.task_serializer == "json"  # the app's configuration, once read, installs the codec
    assert registry._decoders["application/json"] is codec.loads
    content_type, encoding, payload = kombu_registry_dumps({"id": TAGGED["id"], "n": [1, 2]}, serializer="json")
    assert (content_type, encoding) == ("application/json", "utf-8")
    assert payload == kombu_json.dumps({"id": TAGGED["id"], "n": [1, 2]})
    assert kombu_registry_loads(payload, content_type, encoding) == {"id": TAGGED["id"], "n": [1, 2]}

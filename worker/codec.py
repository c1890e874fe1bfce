"""kombu's `json` decoder, faster on the fleet's side and giving exactly what kombu's own gives.

Every message body and stored result of the fleet is JSON (`task_serializer`, `result_serializer`). Decoding
with kombu's codec (the standard library's `json` with a Python `object_hook` per dict) was most of what a
producer spent on a ledger batch's result, more when the cyclic garbage collector ran in the middle of it
(docs/PERFORMANCE.md, "Figures behind the code"). Workers decode every message body too, in the main process
and again in the pool process. A patch of kombu's registry: docs/PATCHES.md.

`install()` registers this decoder for kombu's `json` (same name, content type and encoding; the encoder
stays kombu's, so nothing changes on the wire). It takes orjson's path only where orjson gives exactly what
kombu's decoder would:

- not when the text can hold kombu's tagged values (`"__type__"`, also spelt with `\\u` escapes) or
  integers beyond 64 bits (orjson reads those as floats);
- NaN, Infinity, lone surrogates, invalid UTF-8 and anything else orjson refuses go to kombu's decoder,
  which gives what it always gave (or its error).

Either way the cyclic garbage collector is paused while decoding: a decoded JSON tree holds no cycle.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from typing import Any

import orjson
from kombu.serialization import registry
from kombu.utils import json as kombu_json

NAME, CONTENT_TYPE, CONTENT_ENCODING = "json", "application/json", "utf-8"
# Characters that spell kombu's "__type__" marker when written as \u00XX escapes (_ t y p e).
_ESCAPED_MARKER = re.compile(rb"\\u00(?:5[fF]|7[049]|65)")
# A run of 19 digits: an integer that may not fit in 64 bits (orjson would read it as a float).
_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19


def _gc_paused(call: Callable[[Any], Any], value: Any) -> Any:
    if not gc.isenabled():
        return call(value)
    gc.disable()
    try:
        return call(value)
    finally:
        gc.enable()


def _orjson_reads_exactly(data: bytes) -> bool:
    return (
        b"__type__" not in data and _ESCAPED_MARKER.search(data) is None and _LONG_NUMBER not in data.translate(_DIGITS)
    )


def _decode(data: str | bytes | bytearray | memoryview) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if _orjson_reads_exactly(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, lone surrogates, invalid UTF-8...: kombu's answer, whatever it is
    return kombu_json.loads(data)


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """What kombu's `json` loads gives for the same text."""
    return _gc_paused(_decode, data)


def install() -> None:
    """Make this kombu's `json` decoder in this process (every app's messages and results)."""
    registry.register(NAME, kombu_json.dumps, loads, content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING)

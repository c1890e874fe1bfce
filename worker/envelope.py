"""Bytes popped from a queue's Redis list: the kombu envelope to deliver, or junk with the reason it is not one.

kombu's Redis transport parses what it pops and hands it to the consumer without a check: bytes that are not
JSON, or JSON that is not an envelope, raised in the worker's event loop and the worker exited with the message
gone. `open_envelope` is the check every fetch path runs first (BRPOP, RPOP, a future atomic fetch); it does no
I/O, so junk goes wherever the caller keeps it (worker/dead_letters.py, `keep_junk`).

What is checked is what kombu and the fleet's transport read before any error handling of Celery's: the
envelope's shape, its body encoding, and the content encoding of a JSON body. What the body holds (the task
message) is Celery's to judge, and the worker's consumer records what it refuses (worker/dead_letters.py).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

from worker import codec

# Larger than any message the fleet's producers send (a 10 MB ledger event is base64-encoded to 13.4 MB and
# must still reach the ledger's own size check), small enough that junk is refused before it is parsed.
MAX_ENVELOPE_BYTES = 32 * 1024 * 1024
# Nesting of the envelope: deeper would reach Python's recursion limit in the consumer's own code (json.dumps
# of the unacked record, reprs in log lines). Celery's canvas headers nest about ten levels; task arguments
# travel in the body, which is a string here.
MAX_DEPTH = 200
# kombu's delivery tags are UUIDs; the tag is a field of the `unacked` hash.
MAX_TAG_CHARS = 256
# Content encodings a JSON body may declare: kombu's JSON decoder reads UTF-8 whatever the header says.
JSON_ENCODINGS = frozenset({"utf-8", "utf8"})

# What decoding hostile bytes raises: invalid JSON or UTF-8 (ValueError), and kombu's tagged values
# ({"__type__": "decimal", "__value__": ...}) whose value its decoders cannot read.
_UNREADABLE = (ValueError, TypeError, AttributeError, ArithmeticError, LookupError)

# Reasons, documented in docs/RELIABILITY.md ("Dead letters").
TOO_LARGE = "too_large"
NOT_JSON = "not_json"
TOO_DEEP = "too_deep"
NOT_AN_ENVELOPE = "not_an_envelope"
BAD_BODY_ENCODING = "bad_body_encoding"
BAD_CONTENT_ENCODING = "bad_content_encoding"


@dataclass(frozen=True, slots=True)
class Junk:
    """Bytes from a queue that cannot be delivered: why, and what was read of them."""

    reason: str
    detail: str
    envelope: dict[str, Any] | None = None  # the JSON object, when the bytes were one

    @property
    def task_name(self) -> str:
        """The task named in the headers, if the bytes got that far."""
        return _header(self.envelope, "task")

    @property
    def task_id(self) -> str:
        """The task id in the headers, if the bytes got that far."""
        return _header(self.envelope, "id")


def _header(envelope: dict[str, Any] | None, name: str) -> str:
    headers = envelope.get("headers") if envelope is not None else None
    value = headers.get(name) if isinstance(headers, dict) else None
    return value if isinstance(value, str) else ""


def open_envelope(raw: bytes | str) -> dict[str, Any] | Junk:
    """The envelope kombu can deliver, or Junk saying why these bytes are not one."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        return Junk(TOO_LARGE, f"{len(raw)} bytes, limit {MAX_ENVELOPE_BYTES}")
    try:
        value = codec.loads(raw)
    except RecursionError:
        return Junk(TOO_DEEP, "nested beyond the JSON parser's limit")
    except _UNREADABLE as exc:
        return Junk(NOT_JSON, f"{type(exc).__name__}: {exc}"[:300])
    if not isinstance(value, dict):
        return Junk(NOT_AN_ENVELOPE, f"a JSON {type(value).__name__}, not an object")
    problem = _shape(value)
    if problem is not None:
        return Junk(problem[0], problem[1], value)
    return value


def _shape(envelope: dict[str, Any]) -> tuple[str, str] | None:
    properties = envelope.get("properties")
    if not isinstance(properties, dict):
        return NOT_AN_ENVELOPE, "no `properties` object"
    if _deeper_than(MAX_DEPTH, envelope):
        return TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels"
    problem = _properties(properties) or _fields(envelope)
    if problem is not None:
        return NOT_AN_ENVELOPE, problem
    return _encodings(envelope, properties)


def _properties(properties: dict[str, Any]) -> str | None:
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG_CHARS:
        return f"`properties.delivery_tag` is not a string of 1 to {MAX_TAG_CHARS} characters"
    info = properties.get("delivery_info")
    if not isinstance(info, dict):
        return "no `properties.delivery_info` object"
    if not isinstance(info.get("exchange"), str) or not isinstance(info.get("routing_key"), str):
        return "`properties.delivery_info` needs string `exchange` and `routing_key`"
    priority = properties.get("priority")
    if priority is not None and type(priority) is not int:
        return "`properties.priority` is not an integer"
    return None


def _fields(envelope: dict[str, Any]) -> str | None:
    if not isinstance(envelope.get("body"), str):
        return "`body` is not a string"
    if "headers" in envelope and not isinstance(envelope["headers"], dict):
        return "`headers` is not an object"
    for name in ("content-type", "content-encoding"):
        if envelope.get(name) is not None and not isinstance(envelope[name], str):
            return f"`{name}` is not a string"
    return None


def _encodings(envelope: dict[str, Any], properties: dict[str, Any]) -> tuple[str, str] | None:
    encoding = properties.get("body_encoding")
    if encoding is not None and encoding != "base64":
        return BAD_BODY_ENCODING, f"body encoding {str(encoding)[:40]!r}, not base64"
    if encoding == "base64":
        try:
            # kombu's own decoding (str_to_bytes, then base64.b64decode), without keeping the bytes
            binascii.a2b_base64(envelope["body"].encode())
        except ValueError as exc:  # binascii.Error, UnicodeEncodeError (a lone surrogate)
            return BAD_BODY_ENCODING, f"the body is not base64: {exc}"[:300]
    content_type = envelope.get("content-type")
    declared = envelope.get("content-encoding")
    if content_type == codec.CONTENT_TYPE and declared is not None and declared.lower() not in JSON_ENCODINGS:
        return BAD_CONTENT_ENCODING, f"a JSON body declared as {declared[:40]!r}, not utf-8"
    return None


def _deeper_than(limit: int, *values: Any) -> bool:
    # Level by level, containers only: a fleet envelope's headers are mostly flat, so this is a few dict scans.
    level = [value for value in values if type(value) is dict or type(value) is list]
    depth = 1
    while level:
        if depth > limit:
            return True
        below = []
        for value in level:
            for child in value.values() if type(value) is dict else value:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level, depth = below, depth + 1
    return False

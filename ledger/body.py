"""A body as far as it can be read without a schema: JSON without floats or NaN, a size limit, a fingerprint."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem found with an event."""

    code: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The JSON form used in results."""
        return {"code": self.code, "field": self.field, "message": self.message}


# Not frozen, like the other records made once per event (LedgerEvent, Applied, Score): a frozen dataclass's
# __init__ sets each field through object.__setattr__, several times the cost of a plain one.
@dataclass(slots=True)
class Decoded:
    """A body as far as it could be read: the JSON object (or None), its fingerprint and its id."""

    body: dict[str, Any] | None
    fingerprint: str
    violations: list[Violation]
    event_id: str = ""

    @staticmethod
    def of(
        body: dict[str, Any] | None,
        fingerprint: str,
        violations: list[Violation],
        id_from: dict[str, Any] | None = None,
    ) -> Decoded:
        """A decoded body with its id: the event's own (read from `id_from`, else the body), or a stable one
        derived from the content when it has none fit to be a key."""
        source = body if id_from is None else id_from
        value = source.get("event_id") if source else None
        if isinstance(value, str) and value and len(value) <= 128 and is_text(value):
            event_id = unicodedata.normalize("NFC", value)
        else:
            event_id = f"raw-{fingerprint[:24]}"
        return Decoded(body, fingerprint, violations, event_id)

    def text(self, key: str, limit: int = 128) -> str | None:
        """A string field of the envelope, if present (at most `limit` characters)."""
        value = self.body.get(key) if self.body else None
        return value[:limit] if isinstance(value, str) else None


def _refuse_float(text: str) -> Any:
    raise ValueError(f"float {text} (send amounts as decimal strings or integer minor units)")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number")


def _has_float(value: Any) -> bool:
    # Containers only go on the stack: an event's strings and integers are checked where they are met.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            return True
        for child in item.values() if kind is dict else item if kind is list else ():
            child_kind = type(child)
            if child_kind is float:
                return True
            if child_kind is dict or child_kind is list:
                stack.append(child)
    return False


def _encoded(body: Any) -> tuple[bytes, bool]:
    """Canonical JSON bytes, and whether orjson refused the body (integers beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS), False
    except TypeError:  # the standard library handles them
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", "surrogatepass"), True


def _canonical_bytes(body: Any) -> bytes:
    return _encoded(body)[0]


def is_text(value: str) -> bool:
    """Whether a string is text every store can hold: no lone surrogate (JSON allows "\\ud800", UTF-8 does
    not) and no NUL (PostgreSQL's text refuses it)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _why_not_text(value: str) -> str:
    return "holds NUL (U+0000)" if "\x00" in value else "holds a lone surrogate: not Unicode text"


# Fields where such a string is an `invalid_identifier` (anywhere else it is `schema_invalid`).
_IDENTIFIERS = frozenset({"event_id", "account", "sender", "receiver", "transaction_id", "contract_id", "execution_id"})


def _not_text(body: Any) -> Violation | None:
    """The first string of the body (a key or a value, at any depth) that is not storable text, as a violation.

    Such a string is valid JSON but no text: SQL drivers, log files and HTTP responses cannot encode a lone
    surrogate (an event holding one crashed the store), and PostgreSQL refuses NUL in a text column. Called only
    when orjson refused the body (it refuses surrogates) or its JSON holds an escaped NUL.
    """
    stack: list[tuple[Any, str]] = [(body, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if not is_text(value):
                name = where.rsplit(".", 1)[-1]
                code = "invalid_identifier" if name in _IDENTIFIERS else "schema_invalid"
                return Violation(code, where, _why_not_text(value))
        elif isinstance(value, dict):
            for key, child in value.items():
                path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and not is_text(key):
                    shown = path.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
                    return Violation("schema_invalid", shown, f"a key that {_why_not_text(key)}")
                stack.append((child, path))
        elif isinstance(value, list):
            stack.extend((child, f"{where}.{index}") for index, child in enumerate(value))
    return None


def _decoded(body: dict[str, Any], encoded: tuple[bytes, bool] | None = None) -> Decoded:
    """A JSON object as read, or, when a string in it is no text, its violation and no body to store."""
    canonical, refused = encoded or _encoded(body)
    problem = _not_text(body) if refused or b"\\u0000" in canonical else None
    if problem is not None:
        return Decoded.of(None, _digest(canonical), [problem], id_from=body)
    return Decoded.of(body, _digest(canonical), [])


def canonical(body: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept."""
    return _canonical_bytes(body).decode("utf-8", "surrogatepass")


def dumps(value: Any) -> str:
    """Compact JSON text (fast path: orjson)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(raw: str | bytes | dict[str, Any], limit: int) -> Decoded:
    """Read a body into a JSON object, refusing non-JSON, NaN/Infinity, floats and oversized bodies."""
    if isinstance(raw, dict):
        if _has_float(raw):
            return Decoded.of(raw, _digest(repr(raw).encode()), [Violation("malformed_payload", "", "float value")])
        encoded = _encoded(raw)
        if len(encoded[0]) > limit:
            return Decoded.of(raw, _digest(encoded[0]), [_too_large(len(encoded[0]), limit)])
        return _decoded(raw, encoded)
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > limit:
        return Decoded.of(None, _digest(data), [_too_large(len(data), limit)])
    try:
        body = json.loads(data, parse_float=_refuse_float, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        return Decoded.of(None, _digest(data), [Violation("malformed_payload", "", f"not JSON: {exc}"[:200])])
    if not isinstance(body, dict):
        return Decoded.of(None, _digest(data), [Violation("malformed_payload", "", "not a JSON object")])
    return _decoded(body)


def _too_large(size: int, limit: int) -> Violation:
    return Violation("payload_too_large", "", f"{size} bytes, limit {limit}")

"""Redact secrets from log messages, extra fields and anything else written out."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_KEYS = re.compile(
    r"(pass(word|wd)?|token|secret|api[_-]?key|apikey|authorization|auth|credential|private[_-]?key|dsn)",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    r"(?P<key>\b[\w-]*(?:password|passwd|token|secret|api[_-]?key|apikey|authorization)[\w-]*\b)"
    r"(?P<sep>\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<at>@)", re.I)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SLACK_HOOK = re.compile(r"(hooks\.slack\.com/services/)[\w/]+")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"{MASK}{digits[-4:]}" if _luhn_ok(digits) else match.group(0)


# What every match of the patterns above contains: text without any of it is returned as is after one scan
# instead of five (most log fields: ids, statuses, codes).
_MAYBE_SECRET = re.compile(
    r"://|bearer|basic|pass|token|secret|api|authorization|hooks\.slack\.com|(?:\d[ -]?){12}\d", re.I
)
# The same test for ASCII text, faster: its words on the lowered text (a case-insensitive alternation
# is slow in `re`), the card digits apart. Only for ASCII: re.I also folds a few non-ASCII letters.
_MAYBE_WORD = re.compile(r"://|bearer|basic|pass|token|secret|api|authorization|hooks\.slack\.com")
_MAYBE_CARD = re.compile(r"(?:\d[ -]?){12}\d")


def _maybe_secret(text: str) -> bool:
    if text.isascii():
        return bool(_MAYBE_WORD.search(text.lower()) or _MAYBE_CARD.search(text))
    return bool(_MAYBE_SECRET.search(text))


def mask_text(text: str) -> str:
    """The text with key=value secrets, bearer tokens, URL passwords and card numbers redacted."""
    if not _maybe_secret(text):
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    text = _SLACK_HOOK.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _CARD.sub(_mask_card, text)


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    # Field names repeat on every log line: each is matched once.
    return SECRET_KEYS.search(key) is not None


def mask_value(key: str, value: Any) -> Any:
    """One field's value, redacted when its key names a secret, recursively for containers."""
    if _secret_key(key) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {str(k): mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(key, item) for item in value]
    return value


def mask_identifier(value: str, keep: int = 3, tail: int = 2) -> str:
    """An identifier shortened for logs: `acc***89`."""
    if len(value) <= keep + tail:
        return MASK
    return f"{value[:keep]}{MASK}{value[-tail:]}"

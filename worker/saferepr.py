"""The text of a task's return value, as Celery's saferepr writes it, without its streaming machinery.

A pool process writes the repr of every return value (`resultrepr_maxsize`, 1,024 characters) for the
`task-succeeded` event that Flower shows. Celery's `saferepr` streams it token by token in Python, a visible
part of a single event's task (docs/PERFORMANCE.md). This renders the plain values a fleet task returns (dicts,
lists, tuples, strings, numbers, None, a few levels deep) into the same text directly, and hands anything
else, anything deeper and anything longer to Celery's own. A patch of Celery: docs/PATCHES.md.
"""

from __future__ import annotations

from typing import Any

import celery.app.trace
import celery.worker.request
from celery.utils.saferepr import saferepr as celery_saferepr

_SCALARS = (int, float, bool)


class _Unplain(Exception):
    """The value needs Celery's own saferepr: another type, a deeper level, or a longer text."""


def _render(value: Any, parts: list[str], budget: list[int], level: int, maxlevels: int) -> None:
    kind = type(value)
    if kind is str:
        if len(value) >= budget[0]:
            raise _Unplain
        text = "'" + value.replace("'", "\\'") + "'"
    elif kind in _SCALARS:
        text = str(value)
    elif value is None:
        text = "None"
    elif kind is dict or kind is list or kind is tuple:
        if maxlevels and level >= maxlevels:
            raise _Unplain
        _container(value, kind, parts, budget, level + 1, maxlevels)
        return
    else:
        raise _Unplain
    budget[0] -= len(text)
    if budget[0] <= 0:
        raise _Unplain
    parts.append(text)


def _container(value: Any, kind: type, parts: list[str], budget: list[int], level: int, maxlevels: int) -> None:
    if not value:
        parts.append("{}" if kind is dict else "[]" if kind is list else "()")
        return
    parts.append("{" if kind is dict else "[" if kind is list else "(")
    # Each item adds at least its separator: a long container gives up after maxlen items, not at its end.
    budget[0] -= 2 * len(value)
    if budget[0] <= 0:
        raise _Unplain
    first = True
    for item in value.items() if kind is dict else value:
        if not first:
            parts.append(", ")
        first = False
        if kind is dict:
            key, item = item
            if type(key) is not str:
                raise _Unplain
            _render(key, parts, budget, level, maxlevels)
            parts.append(": ")
        _render(item, parts, budget, level, maxlevels)
    parts.append("}" if kind is dict else "]" if kind is list else ",)" if len(value) == 1 else ")")


def fast_saferepr(o: Any, maxlen: int | None = None, maxlevels: int = 3, seen: Any = None) -> str:
    """Celery's `saferepr(o, maxlen, maxlevels)`: the same text, rendered directly when `o` is plain."""
    if maxlen is not None and seen is None:
        parts: list[str] = []
        # Room for every character and separator: the text must come out shorter than maxlen (no truncation).
        budget = [maxlen]
        try:
            _render(o, parts, budget, 0, maxlevels)
        except (_Unplain, RecursionError):
            pass
        else:
            text = "".join(parts)
            if len(text) < maxlen:
                return text
    return str(celery_saferepr(o, maxlen, maxlevels, seen))


def install() -> None:
    """Use the fast path where a worker writes return values: the pool's tracer and the main process's event."""
    celery.app.trace.saferepr = fast_saferepr
    celery.worker.request.saferepr = fast_saferepr

"""A Celery task message (protocol 2) as the worker's consumer reads it: what its headers and body must hold.

Celery trusts the types of a message's headers: a task name that is a list, a missing `id`, a `timelimit` of
three values raised in the worker's event loop (the worker exited), or after the request took the pool's only
slot (the worker hung). `problem` names what is wrong before Celery reads the message, so the consumer refuses
it as a dead letter (`invalid_message`). The types are those of Celery's protocol 2
(docs.celeryq.dev, internals/protocol); protocol 1 (the task name in the body) is not read by the fleet.
"""

from __future__ import annotations

import math
from typing import Any

_TEXT = (str, type(None))
# Optional headers and the types Celery (and the fleet's correlation header) can read them as.
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "lang": _TEXT,
    "root_id": _TEXT,
    "parent_id": _TEXT,
    "group": _TEXT,
    "shadow": _TEXT,
    "meth": _TEXT,
    "origin": _TEXT,
    "argsrepr": _TEXT,
    "kwargsrepr": _TEXT,
    "eta": _TEXT,
    "expires": _TEXT,
    "x_correlation_id": _TEXT,
    "group_index": (int, type(None)),
    "retries": (int, type(None)),
    "replaced_task_nesting": (int, type(None)),
    "ignore_result": (bool, type(None)),
    "stamped_headers": (list, type(None)),
    "stamps": (dict, type(None)),
}
_EMBED: dict[str, tuple[type, ...]] = {
    "callbacks": (list, type(None)),
    "errbacks": (list, type(None)),
    "chain": (list, type(None)),
    "chord": (dict, type(None)),
}


def problem(headers: dict[str, Any], body: Any) -> str | None:
    """What makes this message unreadable as a task (None when Celery can take it): headers, then body."""
    for name in ("task", "id"):
        value = headers.get(name)
        if not isinstance(value, str) or not value:
            return f"header `{name}` is {_kind(value)}, not a non-empty string (Celery's message protocol 2)"
    for name, types in _OPTIONAL.items():
        value = headers.get(name)
        if not isinstance(value, types) or (types[0] is int and isinstance(value, bool)):
            return f"header `{name}` is {_kind(value)}"
    return _timelimit(headers.get("timelimit")) or _body(body)


def _timelimit(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        return f"header `timelimit` is {_kind(value)}, not [soft, hard]"
    for limit in value:
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit) or limit < 0:
            return f"header `timelimit` holds {limit!r:.40}, not seconds"
    return None


def _body(body: Any) -> str | None:
    if not isinstance(body, list | tuple) or len(body) != 3:
        return f"the body is {_kind(body)}, not [args, kwargs, embed]"
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        return f"the body's args are {_kind(args)}, not a list"
    if not isinstance(kwargs, dict):
        return f"the body's kwargs are {_kind(kwargs)}, not an object"
    if embed is None:
        return None
    if not isinstance(embed, dict):
        return f"the body's embed is {_kind(embed)}, not an object"
    for name, types in _EMBED.items():
        if not isinstance(embed.get(name), types):
            return f"the body's `{name}` is {_kind(embed.get(name))}"
    return None


def _kind(value: Any) -> str:
    name = type(value).__name__
    return "missing" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"

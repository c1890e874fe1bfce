"""Text no store can hold (lone surrogates, NUL) put in every string position of ledger events and requests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.ledger_cases import event

# A lone surrogate (valid JSON: "\ud800"; no UTF-8) or NUL (PostgreSQL's text refuses it), alone or in text.
BAD = st.one_of(
    st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\x00"]),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
)


def _templates(prefix: str) -> list[dict[str, Any]]:
    """One event of each type, every field a string position to spoil."""
    leg = {"currency": "EUR"}
    return [
        event(f"{prefix}-o", "account_opened", {"account": f"{prefix}-a", "currency": "EUR", "opening_balance": "5"}),
        event(f"{prefix}-c", "account_closed", {"account": f"{prefix}-a"}, correlation_id="corr-1"),
        event(
            f"{prefix}-t",
            "transaction_created",
            {"transaction_id": "t", "sender": "a", "receiver": "b", "amount": "1.00", "currency": "EUR"},
        ),
        event(f"{prefix}-b", "balance_changed", {"account": "a", "before": "1", "after": "2", "transaction_id": "x"}),
        event(
            f"{prefix}-k",
            "contract_executed",
            {
                "contract_id": "k",
                "execution_id": "x",
                "inputs": [{"account": "a", "amount": "1", **leg}],
                "outputs": [{"account": "b", "amount": "1", **leg}],
            },
        ),
        event(f"{prefix}-g", "config_changed", {"key": "filters", "value": [{"action": "exclude", "account": "z*"}]}),
    ]


def _positions(value: Any) -> list[Callable[[Any, str], None]]:
    """Setters, one per string of a JSON value (each key and each string value, at any depth)."""
    found: list[Callable[[Any, str], None]] = []

    def walk(item: Any, path: tuple[Any, ...]) -> None:
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in pairs:
            here = (*path, key)
            if isinstance(key, str):
                found.append(lambda root, bad, path=path, key=key: _rename(_at(root, path), key, bad))
            if isinstance(child, str):
                found.append(lambda root, bad, here=here: _set(root, here, bad))
            walk(child, here)

    walk(value, ())
    return found


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        root = root[part]
    return root


def _set(root: Any, path: tuple[Any, ...], bad: str) -> None:
    parent = _at(root, path[:-1])
    text = parent[path[-1]]
    parent[path[-1]] = text[: len(text) // 2] + bad + text[len(text) // 2 :]


def _rename(parent: dict[str, Any], key: str, bad: str) -> None:
    parent[key[: len(key) // 2] + bad + key[len(key) // 2 :]] = parent.pop(key)


@st.composite
def spoiled_events(draw: st.DrawFn, prefix: str = "sp") -> dict[str, Any]:
    """A ledger event with unstorable text put into one to three of its string positions (keys or values)."""
    value = copy.deepcopy(draw(st.sampled_from(_templates(f"{prefix}-{draw(st.integers(0, 10**9))}"))))
    positions = _positions(value)
    for index in draw(st.lists(st.integers(0, len(positions) - 1), min_size=1, max_size=3, unique=True)):
        _positions(value)[index](value, draw(BAD))  # positions again: a renamed key moves the ones below it
    return value


def storable(value: Any) -> bool:
    """Whether a JSON value could go to any store: UTF-8 encodable, no NUL."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\\u0000" not in json.dumps(value)

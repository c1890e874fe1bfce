"""Conversations: the earlier turns a run sees (bounded, older ones summarised) and, for the `local` planner,
references to an earlier result ("double it", "그 결과에 3을 더해") resolved deterministically."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pydantic import Field

from agents.models import Frozen, RunRecord

# A rough token count without a tokenizer: about four characters a token in English, fewer in Korean.
CHARS_PER_TOKEN = 4
SUMMARY_CHARS = 600


class Turn(Frozen):
    """One earlier run of the conversation: what was asked, what came back, and its last numeric result."""

    run_id: str
    input: str
    status: str
    answer: str | None = None
    value: str | None = None


class Context(Frozen):
    """What a run sees of its conversation: the newest turns that fit, and a summary of the older ones."""

    turns: tuple[Turn, ...] = ()
    summary: str | None = None
    summarised: int = Field(default=0, ge=0)

    @property
    def last_value(self) -> str | None:
        """The newest numeric result among the turns (what "it" refers to)."""
        return next((t.value for t in reversed(self.turns) if t.value is not None), None)


def tokens(text: str) -> int:
    """An estimate of the tokens of a text."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def _line(turn: Turn) -> str:
    return f"{turn.input} -> {turn.answer or turn.status}"


def bound(turns: Sequence[Turn], max_tokens: int) -> Context:
    """The newest turns whose text fits in `max_tokens`; the older ones become one summary line."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        cost = tokens(_line(turn))
        if kept and used + cost > max_tokens:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    older = list(turns[: len(turns) - len(kept)])
    if not older:
        return Context(turns=tuple(kept))
    summary = f"{len(older)} earlier turns: " + "; ".join(_line(t) for t in older)
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1] + "…"
    return Context(turns=tuple(kept), summary=summary, summarised=len(older))


def turn_of(record: RunRecord) -> Turn:
    """A finished run as a turn: its input, answer and the value of its last calculation."""
    output = record.output or {}
    results = output.get("results") or {}
    values = [r["value"] for _id, r in sorted(results.items()) if isinstance(r, dict) and "value" in r]
    return Turn(run_id=record.run_id, input=record.request.input, status=record.status,
                answer=output.get("answer"), value=str(values[-1]) if values else None)  # fmt: skip


_NUMBER = r"(-?\d+(?:\.\d+)?)"
_REFERENCE = re.compile(
    r"\b(it|that|this|the (previous |last )?(result|answer|value|number))\b|그 ?결과|결과|그거|그것|이거|그 ?값|그 ?답",
    re.IGNORECASE,
)
# (pattern, the expression it makes of the earlier value `v` and the match); the first that matches wins.
_OPERATIONS: tuple[tuple[re.Pattern[str], Callable[[str, re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), build)
    for pattern, build in (
        (r"\bdouble\b|두 ?배", lambda v, m: f"{v}*2"),
        (r"\btriple\b|세 ?배", lambda v, m: f"{v}*3"),
        (r"\bhalve\b|\bhalf of\b|절반|반으로", lambda v, m: f"{v}/2"),
        (r"\bsquare root\b|\bsqrt\b|제곱근|루트", lambda v, m: f"sqrt({v})"),
        (r"\bsquare\b|제곱", lambda v, m: f"{v}^2"),
        (rf"{_NUMBER} ?배", lambda v, m: f"{v}*{m.group(1)}"),
        (rf"\badd {_NUMBER}|\bplus {_NUMBER}|{_NUMBER} ?(?:을|를)? ?더하|{_NUMBER} ?(?:을|를)? ?더해", lambda v, m: f"{v}+{_first(m)}"),
        (rf"\bsubtract {_NUMBER}|\bminus {_NUMBER}|{_NUMBER} ?(?:을|를)? ?빼", lambda v, m: f"{v}-{_first(m)}"),
        (rf"\bmultiply (?:\w+ )*?by {_NUMBER}|\btimes {_NUMBER}|{_NUMBER} ?(?:을|를)? ?곱", lambda v, m: f"{v}*{_first(m)}"),
        (rf"\bdivide (?:\w+ )*?by {_NUMBER}|{_NUMBER} ?(?:으로|로) ?나누|{_NUMBER} ?(?:으로|로) ?나눠", lambda v, m: f"{v}/{_first(m)}"),
    )
)  # fmt: skip
_EXPRESSION = re.compile(r"\d\s*[-+*/^×÷]\s*\d")


def _first(match: re.Match[str]) -> str:
    number = next(g for g in match.groups() if g is not None)
    return f"({number})" if number.startswith("-") else number


def resolve(text: str, value: str | None) -> str | None:
    """The arithmetic a follow-up asks of the earlier result (`42*2` for "double it" after 42); None when the text
    refers to nothing earlier or holds a calculation of its own."""
    if value is None or _EXPRESSION.search(text):
        return None
    numbers = re.findall(r"\d+(?:\.\d+)?", text)
    if not _REFERENCE.search(text) and len(numbers) > 1:
        return None
    for pattern, build in _OPERATIONS:
        match = pattern.search(text)
        if match:
            return build(f"({value})" if value.startswith("-") else value, match)
    return None

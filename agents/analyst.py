"""Sena, the analyst: turns a request into a plan. `plan_locally` is the deterministic `local` planner."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agents.models import Plan, Subtask
from agents.tools.summarize import is_korean

BALANCE_QUERY = "SELECT account, currency, balance FROM ledger_accounts WHERE closed = 0 ORDER BY account"
RUNS_QUERY = "SELECT status, COUNT(*) AS runs FROM agent_runs GROUP BY status ORDER BY status"

_WORD_OPERATORS = [
    (r"\bmultiplied by\b|\btimes\b|곱하기", "*"),
    (r"\bdivided by\b|나누기", "/"),
    (r"\bplus\b|더하기", "+"),
    (r"\bminus\b|빼기", "-"),
]
_EXPRESSION = re.compile(r"(?:sqrt|abs|round|min|max|pi|[0-9.+\-*/()%^×÷, ])+")
_OPERATOR = re.compile(r"[+\-*/%^×÷]|sqrt|abs|round|min|max")
_SUMMARY = re.compile(r"summari[sz]e|summary|tl;?dr|요약", re.IGNORECASE)
_CALC_WORDS = re.compile(r"comput|calculat|what is|how much is|계산|얼마", re.IGNORECASE)
_BALANCE = re.compile(r"\bbalances?\b|잔액|잔고", re.IGNORECASE)
_RUNS = re.compile(r"\bruns?\b.*\b(status|count|how many)\b|how many runs|실행 (현황|건수|통계)", re.IGNORECASE)
_SELECT = re.compile(r"\b(select|with)\b\s.+?\bfrom\b[^;]*", re.IGNORECASE | re.DOTALL)
_STATUS = re.compile(
    r"system status|fleet status|\bhealth\b|\bcpu\b|memory usage|시스템 상태|서버 상태|상태 (확인|점검)", re.I
)
_LEDGER = re.compile(r"\b(validate|check)\b.*\bevent\b|이벤트.*(검증|확인)", re.IGNORECASE)


@dataclass
class _Found:
    position: int
    tool: str
    args: dict[str, Any]
    takes_input: bool = False
    summary: bool = False
    notes: list[str] = field(default_factory=list)


def _split_payload(text: str) -> tuple[str, str | None, int]:
    """The instruction part, the text to summarise (after the colon that follows 'summarise'), its position."""
    match = _SUMMARY.search(text)
    if not match:
        return text, None, -1
    colon = re.search(r"[:：]", text[match.end() :])
    # "summarise: ...", "summarize the following text: ...", "요약해줘: ..." (a short lead-in before the colon)
    if colon and re.fullmatch(r"[\w\s]{0,30}", text[match.end() : match.end() + colon.start()]):
        start = match.end() + colon.end()
        return text[: match.start()] + text[match.start() : start], text[start:].strip() or None, match.start()
    return text, None, match.start()


def _pad(symbol: str, match: re.Match[str]) -> str:
    return symbol.center(len(match.group(0)))


def _expressions(text: str) -> list[tuple[int, str]]:
    for pattern, symbol in _WORD_OPERATORS:
        # Same length as the words replaced, so positions still order the subtasks.
        text = re.sub(pattern, functools.partial(_pad, symbol), text, flags=re.IGNORECASE)
    found = []
    for match in _EXPRESSION.finditer(text):
        candidate = re.sub(r"\s+", "", match.group(0)).strip(",.")
        if (
            re.search(r"[0-9]", candidate)
            and _OPERATOR.search(candidate.lstrip("-"))
            and candidate.count("(") == candidate.count(")")
        ):
            found.append((match.start(), candidate))
    return found


def _find_tools(instruction: str) -> list[_Found]:
    found: list[_Found] = []
    for position, expression in _expressions(instruction):
        found.append(_Found(position, "math.calculate", {"expression": expression}))
    if select := _SELECT.search(instruction):
        found.append(_Found(select.start(), "sql.query", {"query": select.group(0).strip()}))
    elif balance := _BALANCE.search(instruction):
        found.append(_Found(balance.start(), "sql.query", {"query": BALANCE_QUERY}))
    elif runs := _RUNS.search(instruction):
        found.append(_Found(runs.start(), "sql.query", {"query": RUNS_QUERY}))
    if status := _STATUS.search(instruction):
        found.append(_Found(status.start(), "system.status", {}))
    if (ledger := _LEDGER.search(instruction)) and (event := _json_object(instruction)) is not None:
        found.append(_Found(ledger.start(), "ledger.quick_run", {"event": event}))
    return found


def _json_object(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _end = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _summary_step(instruction: str, payload: str | None, position: int, others: list[_Found]) -> _Found | None:
    if position < 0:
        return None
    if payload:
        return _Found(position, "text.summarize", {"text": payload}, summary=True)
    if others:
        return _Found(position, "text.summarize", {}, takes_input=True, summary=True)
    before = instruction[:position].strip(" :,")
    if len(before) >= 40:
        return _Found(0, "text.summarize", {"text": before}, summary=True)
    return None


def plan_locally(text: str) -> Plan:
    """A deterministic plan for a Korean or English request; no subtasks when no tool fits."""
    language = "ko" if is_korean(text) else "en"
    instruction, payload, summary_at = _split_payload(text)
    found = _find_tools(instruction)
    if not found and not payload and summary_at < 0 and _CALC_WORDS.search(text):
        return _no_tool(text, language, "it asks for a calculation but holds no arithmetic expression")
    summary = _summary_step(instruction, payload, summary_at, found)
    steps = sorted(found, key=lambda f: f.position) + ([summary] if summary else [])
    if not steps:
        return _no_tool(text, language, "no registered tool matches what it asks")
    subtasks: list[Subtask] = []
    for index, step in enumerate(steps, start=1):
        depends = tuple(s.id for s in subtasks) if step.takes_input else ()
        subtasks.append(Subtask(id=f"s{index}", tool=step.tool, args=step.args, depends_on=depends))
    tools = tuple(dict.fromkeys(s.tool_ref for s in subtasks))
    intents = " + ".join(dict.fromkeys(s.tool.split(".")[1] for s in subtasks))
    rationale = "; ".join(_reason(s) for s in subtasks)
    return Plan(intent=intents, language=language, subtasks=tuple(subtasks), tools=tools, rationale=rationale)


def _reason(subtask: Subtask) -> str:
    if subtask.depends_on:
        return f"{subtask.id}: {subtask.tool_ref} over the output of {', '.join(subtask.depends_on)}"
    return f"{subtask.id}: {subtask.tool_ref} for {json.dumps(subtask.args, ensure_ascii=False)[:80]}"


def _no_tool(text: str, language: str, why: str) -> Plan:
    rationale = f"no tool fits: {why}" if language == "en" else f"맞는 도구가 없습니다 (no tool fits): {why}"
    return Plan(intent="unsupported", language="ko" if language == "ko" else "en", rationale=rationale)

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
_TASK = re.compile(r"summari[sz]\w*|summary|tl;?dr|요약|translat\w*|번역|analy[sz]\w*|분석", re.IGNORECASE)
# Words after the verb that only point back at what the instruction produces ("summarise it", "the results",
# "요약해줘"); longer, it is text to work on.
_REFERENCE_WORDS = 4
_WORDS = re.compile(r"\w+")
NOTHING_TO_SUMMARISE = (
    "there is nothing to summarise: put the text after a colon, or ask for data first (`check the balances and "
    "summarise them`)"
)
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


@dataclass(frozen=True)
class _Request:
    """A request split at its task verb: the instruction before it, what the task is, and the text it works on."""

    instruction: str
    task: str | None = None  # "summarize", "translate", "analyze"
    task_at: int = -1
    payload: str | None = None  # the text the task works on: data, never planned from


def _task_of(verb: str) -> str:
    lowered = verb.lower()
    return "translate" if lowered.startswith("translat") or verb == "번역" else (
        "analyze" if lowered.startswith("analy") or verb == "분석" else "summarize"
    )  # fmt: skip


def split_request(text: str) -> _Request:
    """The instruction (planned from) and the object of summarise/translate/analyse (data): after the colon or
    line break that follows the verb, however long the lead-in, or else the rest of the sentence when it is more
    than a short reference such as `it` or `해줘`."""
    match = _TASK.search(text)
    if not match:
        return _Request(text)
    instruction, rest = text[: match.start()], text[match.end() :]
    lead_in = re.search(r"[:：\n]", rest)
    if lead_in:
        payload = rest[lead_in.end() :].strip()
    else:
        payload = rest.strip() if len(_WORDS.findall(rest)) > _REFERENCE_WORDS else ""
    return _Request(instruction, _task_of(match.group(0)), match.start(), payload or None)


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
    event, (start, end) = _json_object(instruction)
    # The event's own text (amounts, timestamps, words) asks for nothing: blank it out for the other tools.
    scan = instruction[:start] + " " * (end - start) + instruction[end:]
    for position, expression in _expressions(scan):
        found.append(_Found(position, "math.calculate", {"expression": expression}))
    if select := _SELECT.search(scan):
        found.append(_Found(select.start(), "sql.query", {"query": select.group(0).strip()}))
    elif balance := _BALANCE.search(scan):
        found.append(_Found(balance.start(), "sql.query", {"query": BALANCE_QUERY}))
    elif runs := _RUNS.search(scan):
        found.append(_Found(runs.start(), "sql.query", {"query": RUNS_QUERY}))
    if status := _STATUS.search(scan):
        found.append(_Found(status.start(), "system.status", {}))
    if (ledger := _LEDGER.search(scan)) and event is not None:
        found.append(_Found(ledger.start(), "ledger.quick_run", {"event": event}))
    return found


def _json_object(text: str) -> tuple[dict[str, Any] | None, tuple[int, int]]:
    """The first JSON object in the text and its span; (None, (0, 0)) when there is none."""
    start = text.find("{")
    if start < 0:
        return None, (0, 0)
    try:
        value, length = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None, (0, 0)
    return (value, (start, start + length)) if isinstance(value, dict) else (None, (0, 0))


def _summary_step(request: _Request, others: list[_Found]) -> _Found | None:
    if request.task != "summarize":
        return None
    if request.payload:
        return _Found(request.task_at, "text.summarize", {"text": request.payload}, summary=True)
    if others:
        return _Found(request.task_at, "text.summarize", {}, takes_input=True, summary=True)
    before = request.instruction.strip(" :,")
    if len(before) >= 40:
        return _Found(0, "text.summarize", {"text": before}, summary=True)
    return None


def plan_locally(text: str) -> Plan:
    """A deterministic plan for a Korean or English request; no subtasks when no tool fits. The text a request
    asks to summarise, translate or analyse is data: only the instruction before the verb plans tools."""
    request = split_request(text)
    spoken = text if request.payload is None else text[: len(text) - len(request.payload)]
    language = "ko" if is_korean(spoken) else "en"
    if request.task in {"translate", "analyze"}:
        return _no_tool(text, language, f"no registered tool can {request.task} text")
    found = _find_tools(request.instruction)
    if not found and request.task is None and _CALC_WORDS.search(text):
        return _no_tool(text, language, "it asks for a calculation but holds no arithmetic expression")
    summary = _summary_step(request, found)
    steps = sorted(found, key=lambda f: f.position) + ([summary] if summary else [])
    if not steps and request.task == "summarize":
        return _no_tool(text, language, NOTHING_TO_SUMMARISE)
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


# The reasons the planner gives, as a Korean request reads them.
_KO_REASONS = {
    "it asks for a calculation but holds no arithmetic expression": "계산을 요청했지만 계산식이 없습니다",
    "no registered tool matches what it asks": "요청에 맞는 등록된 도구가 없습니다",
    "no registered tool can translate text": "텍스트를 번역하는 도구가 없습니다",
    "no registered tool can analyze text": "텍스트를 분석하는 도구가 없습니다",
    NOTHING_TO_SUMMARISE: "요약할 내용이 없습니다: 콜론 뒤에 글을 넣거나 먼저 데이터를 조회해 주세요 (`잔액 조회하고 요약해줘`)",
}


def _no_tool(text: str, language: str, why: str) -> Plan:
    if language == "ko":
        return Plan(
            intent="unsupported",
            language="ko",
            rationale=f"맞는 도구가 없습니다 (no tool fits): {_KO_REASONS.get(why, why)}",
        )
    return Plan(intent="unsupported", language="en", rationale=f"no tool fits: {why}")

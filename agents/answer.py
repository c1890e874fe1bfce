"""Tool outputs as text in the request's language: the answer's lines, and what a summary of them reads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

# The rows an answer lists; a summary covers them all.
LISTED_ROWS = 20
# A column holding this names the unit of the numbers beside it: totals are kept apart per unit.
UNIT_COLUMNS = ("currency", "unit")

_WORDS = {
    "en": {
        "rows": "{n} rows:",
        "zero_rows": "0 rows.",
        "no_rows": "No rows match.",
        "counted": "{n} rows",
        "total": "total {column}: {amounts}",
        "join": "; ",
        "largest": "Largest {column}: {rows}.",
        "host": "CPU {cpu}%. Memory {memory}%. Disk {disk}%. Load {load}.",
        "host_digest": "CPU {cpu}%, memory {memory}%, disk {disk}%, load {load} on {cpus} CPUs.",
        "queues": "Messages waiting: {queues}.",
    },
    "ko": {
        "rows": "{n}건:",
        "zero_rows": "0건.",
        "no_rows": "조회된 행이 없습니다.",
        "counted": "{n}건",
        "total": "{column} 합계 {amounts}",
        "join": ", ",
        "largest": "{column} 최대: {rows}.",
        "host": "CPU {cpu}%. 메모리 {memory}%. 디스크 {disk}%. 부하 {load}.",
        "host_digest": "CPU {cpu}%, 메모리 {memory}%, 디스크 {disk}%, 부하 {load} (CPU {cpus}개).",
        "queues": "대기 중인 메시지: {queues}.",
    },
}
# The fleet's own column names, as a Korean answer calls them.
_KO_COLUMNS = {"balance": "잔액", "account": "계좌", "currency": "통화", "runs": "실행", "status": "상태",
               "count": "건수", "overdraft_limit": "한도"}  # fmt: skip


def _words(language: str) -> dict[str, str]:
    return _WORDS.get(language, _WORDS["en"])


def render(output: Mapping[str, Any], language: str = "en") -> str:
    """A tool's output as one line of the run's answer."""
    if "summary" in output:
        return str(output["summary"])
    if "value" in output and "expression" in output:
        return f"{output['expression']} = {output['value']}"
    if "rows" in output:
        return _listing(output["rows"], language)
    if "host" in output:
        host = output["host"]
        return _words(language)["host"].format(cpu=host["cpu_percent"], memory=host["memory_percent"],
                                               disk=host["disk_percent"], load=host["load_1m"])  # fmt: skip
    return json.dumps(dict(output), ensure_ascii=False, sort_keys=True, default=str)


def describe(output: Mapping[str, Any], language: str = "en") -> str:
    """A tool's output as the text a dependent tool (the summary) reads: rows become their digest (how many,
    totals, the notable ones), host signals one sentence and the queues another, not a copy of the answer."""
    if "rows" in output:
        return digest(output["rows"], language)
    if "host" in output:
        return _status_digest(output, language)
    return render(output, language)


def _status_digest(output: Mapping[str, Any], language: str) -> str:
    words, host = _words(language), output["host"]
    sentences = [words["host_digest"].format(cpu=host["cpu_percent"], memory=host["memory_percent"],
                                             disk=host["disk_percent"], load=host["load_1m"], cpus=host["cpu_count"])]  # fmt: skip
    queues = (output.get("fleet") or {}).get("queues")
    if queues:
        sentences.append(words["queues"].format(queues=", ".join(f"{q} {n}" for q, n in queues.items())))
    return " ".join(sentences)


def _listing(rows: Sequence[Mapping[str, Any]], language: str) -> str:
    if not rows:
        return _words(language)["zero_rows"]
    lines = [", ".join(f"{k}: {v}" for k, v in row.items()) + "." for row in rows[:LISTED_ROWS]]
    return " ".join([_words(language)["rows"].format(n=len(rows)), *lines])


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _numeric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Columns whose every value is a number (amounts as decimal strings included), ids left out."""
    columns = [c for c in rows[0] if c not in UNIT_COLUMNS and not c.lower().endswith(("id", "_id"))]
    return [c for c in columns if all(_number(row.get(c)) is not None for row in rows)]


def digest(rows: Sequence[Mapping[str, Any]], language: str = "en") -> str:
    """Rows in two sentences: how many and the totals of their numeric columns (per currency when there is one),
    then the row with the largest value of the first numeric column (per currency)."""
    words = _words(language)
    if not rows:
        return words["no_rows"]
    numeric = _numeric_columns(rows)
    unit = next((c for c in UNIT_COLUMNS if c in rows[0]), None)
    name = (lambda c: _KO_COLUMNS.get(c, c)) if language == "ko" else (lambda c: c)
    totals = [words["total"].format(column=name(c), amounts=", ".join(_totals(rows, c, unit))) for c in numeric]
    counted = words["counted"].format(n=len(rows))
    sentences = [words["join"].join([counted, *totals]) + "."]
    label = next((c for c in rows[0] if c not in numeric and c != unit), None)
    if numeric and label and len(rows) > 1:
        tops = [f"{row[label]} ({_amount(row, numeric[0], unit)})" for row in _largest(rows, numeric[0], unit)]
        sentences.append(words["largest"].format(column=name(numeric[0]), rows=", ".join(tops)))
    return " ".join(sentences)


def _amount(row: Mapping[str, Any], column: str, unit: str | None) -> str:
    return f"{row[column]} {row[unit]}" if unit else str(row[column])


def _largest(rows: Sequence[Mapping[str, Any]], column: str, unit: str | None) -> list[Mapping[str, Any]]:
    """The row with the largest value of the column, one per unit (amounts of two currencies do not compare)."""
    best: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = str(row.get(unit, "")) if unit else ""
        if key not in best or (_number(row[column]) or 0) > (_number(best[key][column]) or 0):
            best[key] = row
    return list(best.values())


def _totals(rows: Sequence[Mapping[str, Any]], column: str, unit: str | None) -> list[str]:
    """The column's total, one per unit when the rows carry one (in the order units first appear)."""
    sums: dict[str, Decimal] = {}
    for row in rows:
        key = str(row.get(unit, "")) if unit else ""
        sums[key] = sums.get(key, Decimal(0)) + (_number(row[column]) or Decimal(0))
    return [f"{total} {key}".strip() for key, total in sums.items()]

"""Answers in the request's language, and summaries of data that summarise it (counts, totals, notable rows)."""

from __future__ import annotations

from typing import Any

import pytest

from agents import runner
from agents.answer import describe, digest, render
from agents.memory import MemoryEvents, MemoryStore
from agents.models import WorkflowRequest
from agents.profiles import LocalProfile
from agents.replay import run_inline
from agents.tools import ToolContext, default_registry

ACCOUNTS = [
    {"account": "acc-1", "currency": "EUR", "balance": "500.00"},
    {"account": "acc-2", "currency": "EUR", "balance": "20.50"},
    {"account": "acc-3", "currency": "JPY", "balance": "1000"},
]


class Rows:
    """The read-only SQL port, answering every SELECT with the same rows."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def run_select(self, sql: str, timeout_ms: int) -> list[dict[str, Any]]:
        return self.rows


def _answer(text: str, rows: list[dict[str, Any]]) -> list[str]:
    ports = runner.Ports(store=MemoryStore(), events=MemoryEvents(), registry=default_registry(),
                         profiles=lambda _name: LocalProfile(), context=ToolContext(sql=Rows(rows)))  # fmt: skip
    ports.store.create_run("r1", WorkflowRequest(input=text), "agents")
    record = run_inline("r1", ports)
    assert record.status == "succeeded", record.error
    assert record.output is not None
    return str(record.output["answer"]).splitlines()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "3 rows; total balance: 520.50 EUR, 1000 JPY. Largest balance: acc-1 (500.00 EUR), acc-3 (1000 JPY)."),
        ("ko", "3건, 잔액 합계 520.50 EUR, 1000 JPY. 잔액 최대: acc-1 (500.00 EUR), acc-3 (1000 JPY)."),
    ],
)
def test_rows_are_digested_into_their_count_totals_per_currency_and_largest_rows(language: str, expected: str) -> None:
    assert digest(ACCOUNTS, language) == expected


def test_a_korean_balance_query_and_summary_answers_in_korean_with_a_summary_that_summarises() -> None:
    # When a Korean request asks for the balances and their summary
    listing, summary = _answer("잔액 조회하고 요약해줘", ACCOUNTS)
    # Then the answer is Korean: the rows, then what they add up to, not the rows again
    assert listing.startswith("3건: account: acc-1, currency: EUR, balance: 500.00.")
    assert summary == "3건, 잔액 합계 520.50 EUR, 1000 JPY. 잔액 최대: acc-1 (500.00 EUR), acc-3 (1000 JPY)."
    assert "account:" not in summary


def test_an_english_balance_query_and_summary_answers_in_english_with_totals() -> None:
    listing, summary = _answer("check the balances and summarise them", ACCOUNTS)

    assert listing.startswith("3 rows: account: acc-1")
    assert (
        summary == "3 rows; total balance: 520.50 EUR, 1000 JPY. Largest balance: acc-1 (500.00 EUR), acc-3 (1000 JPY)."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("잔액 조회하고 요약해줘", ["0건.", "조회된 행이 없습니다."]),
        ("check the balances and summarise them", ["0 rows.", "No rows match."]),
    ],
)
def test_no_rows_are_said_once_then_summarised_in_the_requests_language(text: str, expected: list[str]) -> None:
    assert _answer(text, []) == expected


def test_host_signals_are_rendered_and_digested_in_korean() -> None:
    output = {"host": {"cpu_percent": 3.0, "memory_percent": 41.5, "disk_percent": 50.0, "load_1m": 0.5, "cpu_count": 2},
              "fleet": {"queues": {"agents": 0, "ledger": 3}}}  # fmt: skip

    assert render(output, "ko") == "CPU 3.0%. 메모리 41.5%. 디스크 50.0%. 부하 0.5."
    assert (
        describe(output, "ko")
        == "CPU 3.0%, 메모리 41.5%, 디스크 50.0%, 부하 0.5 (CPU 2개). 대기 중인 메시지: agents 0, ledger 3."
    )
    assert (
        describe(output, "en")
        == "CPU 3.0%, memory 41.5%, disk 50.0%, load 0.5 on 2 CPUs. Messages waiting: agents 0, ledger 3."
    )


def test_runs_by_status_are_counted_and_totalled() -> None:
    rows = [{"status": "failed", "runs": 2}, {"status": "succeeded", "runs": 30}]

    assert digest(rows, "en") == "2 rows; total runs: 32. Largest runs: succeeded (30)."
    assert digest(rows, "ko") == "2건, 실행 합계 32. 실행 최대: succeeded (30)."

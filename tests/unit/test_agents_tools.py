"""The tools: calculator allow-list, read-only SQL, summaries, the registry."""

from __future__ import annotations

import pytest

from agents.errors import ToolInputError, ToolNotFound, ToolUnavailable
from agents.tools import Registry, ToolContext, default_registry
from agents.tools.calculator import calculate, render
from agents.tools.sql import check_select
from agents.tools.summarize import summarize

TABLES = ("agent_runs", "audit_events")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(12+30)*2", "84"),
        ("1/4", "0.25"),
        ("2**10", "1024"),
        ("sqrt(16)", "4"),
        ("-3 + 2.5", "-0.5"),
        ("0.1+0.2", "0.3"),
    ],
)
def test_the_calculator_computes_on_decimals(expression: str, value: str) -> None:
    assert render(calculate(expression)) == value


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('id')", "functions"),
        ("x + 1", "Name"),
        ("(1).real", "Attribute"),
        ("2 ** 1000", "exponents"),
        ("9 ** 9 ** 9", "exponents"),
        ("10 ** 99 * 10 ** 99", "exceeds"),
        ("1 / 0", "DivisionByZero"),
        ("[1, 2]", "List"),
        ("lambda: 1", "Lambda"),
        ("'a' * 3", "Constant"),
        ("", "1 to"),
    ],
)
def test_the_calculator_refuses_anything_outside_its_allow_list(expression: str, reason: str) -> None:
    with pytest.raises(ToolInputError, match=reason):
        calculate(expression)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("select status from agent_runs", "SELECT status FROM agent_runs LIMIT 100"),
        ("select * from agent_runs limit 5000", "SELECT * FROM agent_runs LIMIT 100"),
        ("select * from agent_runs limit 3", "SELECT * FROM agent_runs LIMIT 3"),
        ("select count(*) from audit_events", "SELECT COUNT(*) FROM audit_events LIMIT 100"),
    ],
)
def test_a_read_only_select_passes_with_a_limit(query: str, expected: str) -> None:
    assert check_select(query, TABLES, 100) == expected


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("delete from agent_runs", "only SELECT"),
        ("update agent_runs set status = 'x'", "only SELECT"),
        ("select 1; drop table agent_runs", "one statement"),
        ("attach database 'x.db' as y", "only SELECT"),
        ("pragma table_info(agent_runs)", "only SELECT"),
        ("select load_extension('evil')", "load_extension"),
        ("select * from sqlite_master", "not allowed"),
        ("select * from other.agent_runs", "not allowed"),
        ("select * from agent_runs where run_id in (select id from secrets)", "secrets"),
        ("selec * frm", "parse|only SELECT"),
    ],
)
def test_sql_query_refuses_writes_several_statements_and_unknown_tables(query: str, reason: str) -> None:
    with pytest.raises(ToolInputError, match=reason):
        check_select(query, TABLES, 100)


def test_sql_query_runs_the_checked_statement_through_its_port() -> None:
    seen: list[str] = []

    class FakeSql:
        def run_select(self, sql: str, timeout_ms: int) -> list[dict[str, object]]:
            seen.append(sql)
            return [{"status": "succeeded"}]

    output = default_registry().call(
        "sql.query", "v1", {"query": "select status from agent_runs"}, ToolContext(sql=FakeSql())
    )

    assert seen == ["SELECT status FROM agent_runs LIMIT 100"]
    assert output["row_count"] == 1


def test_a_tool_without_its_backend_says_it_is_unavailable() -> None:
    with pytest.raises(ToolUnavailable, match="ledger"):
        default_registry().call(
            "ledger.quick_run", "v1", {"event": {"event_type": "account_opened", "data": {}}}, ToolContext()
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Celery is a task queue. It runs work in the background on many workers. "
            "Workers take tasks from a broker such as Redis. The weather is nice today.",
            "Celery is a task queue. It runs work in the background on many workers.",
        ),
        (
            "오늘 서버 점검이 있었습니다. 점검 중에 작업 큐가 잠시 멈췄습니다. 점검 후 작업 큐는 정상으로 돌아왔습니다. 점심은 김밥이었습니다.",
            "오늘 서버 점검이 있었습니다. 점검 중에 작업 큐가 잠시 멈췄습니다.",
        ),
        ("Short text.", "Short text."),
    ],
)
def test_the_summary_keeps_the_most_representative_sentences(text: str, expected: str) -> None:
    assert summarize(text) == expected


def test_the_registry_knows_each_tool_by_name_and_version() -> None:
    registry = default_registry()

    assert [t.ref for t in registry.tools()] == [
        "ledger.quick_run:v1", "math.calculate:v1", "sql.query:v1", "system.status:v1", "text.summarize:v1",
    ]  # fmt: skip
    assert registry.get("ledger.quick_run").side_effect is True
    with pytest.raises(ToolNotFound):
        registry.get("math.calculate", "v2")
    with pytest.raises(ValueError, match="already registered"):
        Registry([*registry.tools(), registry.get("math.calculate")])


def test_arguments_that_break_the_schema_are_refused_before_the_tool_runs() -> None:
    with pytest.raises(ToolInputError, match=r"\$\.expression: is required"):
        default_registry().call("math.calculate", "v1", {"expr": "1+1"}, ToolContext())

"""Sena, the local planner: Korean and English, multi-part requests, no tool fits."""

from __future__ import annotations

import pytest

from agents.analyst import BALANCE_QUERY, plan_locally


def _calls(text: str) -> list[tuple[str, dict[str, object], tuple[str, ...]]]:
    return [(s.tool, s.args, s.depends_on) for s in plan_locally(text).subtasks]


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("compute (12+30)*2", "(12+30)*2"),
        ("what is 42 times 2?", "42*2"),
        ("(12+30)*2 계산해줘", "(12+30)*2"),
        ("42 곱하기 2 는 얼마야?", "42*2"),
        ("calculate sqrt(16) + 2**3", "sqrt(16)+2**3"),
    ],
)
def test_an_arithmetic_request_becomes_one_calculation(text: str, expression: str) -> None:
    assert _calls(text) == [("math.calculate", {"expression": expression}, ())]


def test_compute_and_summarise_splits_into_two_independent_subtasks() -> None:
    plan = plan_locally("compute (12+30)*2 and summarise: Celery runs tasks. Redis keeps them.")

    assert [(s.id, s.tool, s.depends_on) for s in plan.subtasks] == [
        ("s1", "math.calculate", ()),
        ("s2", "text.summarize", ()),
    ]
    assert plan.subtasks[1].args == {"text": "Celery runs tasks. Redis keeps them."}
    assert plan.tools == ("math.calculate:v1", "text.summarize:v1")
    assert plan.language == "en"


def test_a_korean_balance_check_and_summary_chains_the_summary_after_the_query() -> None:
    plan = plan_locally("잔액 조회하고 요약해줘")

    assert plan.language == "ko"
    assert _calls("잔액 조회하고 요약해줘") == [
        ("sql.query", {"query": BALANCE_QUERY}, ()),
        ("text.summarize", {}, ("s1",)),
    ]


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("시스템 상태 확인해줘", ["system.status"]),
        ("how many runs by status?", ["sql.query"]),
        ("select status from agent_runs", ["sql.query"]),
        ("다음 글을 요약해줘: 오늘 점검이 있었습니다. 큐가 멈췄습니다.", ["text.summarize"]),
        ('validate event {"event_type": "account_opened", "data": {}}', ["ledger.quick_run"]),
        ("compute 2+2 and 3*4", ["math.calculate", "math.calculate"]),
    ],
)
def test_each_kind_of_request_picks_its_tool(text: str, tools: list[str]) -> None:
    assert [call[0] for call in _calls(text)] == tools


@pytest.mark.parametrize("text", ["tell me a joke", "계산해줘", "오늘 날씨 어때?"])
def test_when_no_tool_fits_the_plan_is_empty_and_says_so(text: str) -> None:
    plan = plan_locally(text)

    assert plan.subtasks == ()
    assert plan.intent == "unsupported"
    assert "no tool fits" in plan.rationale


def test_the_same_request_always_gets_the_same_plan() -> None:
    text = "compute 7*6 and summarise: One. Two. Three."
    assert plan_locally(text) == plan_locally(text)

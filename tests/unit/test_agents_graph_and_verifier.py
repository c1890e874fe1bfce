"""Dependency levels and RUNE's four checks."""

from __future__ import annotations

import pytest

from agents import graph
from agents.config import AgentsConfig
from agents.errors import PlanError
from agents.models import Plan, Subtask, SubtaskResult
from agents.tools import default_registry
from agents.verifier import verify


def _s(sid: str, *deps: str) -> Subtask:
    return Subtask(id=sid, tool="text.summarize", args={} if deps else {"text": "x"}, depends_on=deps)


@pytest.mark.parametrize(
    ("subtasks", "levels"),
    [
        ([_s("a"), _s("b"), _s("c")], [["a", "b", "c"]]),
        ([_s("a"), _s("b", "a"), _s("c", "b")], [["a"], ["b"], ["c"]]),
        ([_s("a"), _s("b"), _s("c", "a", "b"), _s("d", "a")], [["a", "b"], ["c", "d"]]),
    ],
)
def test_subtasks_are_grouped_into_dependency_levels(subtasks: list[Subtask], levels: list[list[str]]) -> None:
    assert graph.levels(subtasks) == levels


def test_a_cycle_is_refused() -> None:
    with pytest.raises(PlanError, match="cycle"):
        graph.levels([_s("a", "b"), _s("b", "a")])


PLAN = Plan(intent="calc", subtasks=(Subtask(id="s1", tool="math.calculate", args={"expression": "1+1"}),))
STAGES = ["analyze", "gate", "execute"]


def _result(**update: object) -> SubtaskResult:
    base = SubtaskResult(subtask_id="s1", tool="math.calculate", version="v1", args={"expression": "1+1"},
                         status="succeeded", output={"expression": "1+1", "value": "2"})  # fmt: skip
    return base.model_copy(update=update)


def _checks(
    results: list[SubtaskResult], stages: list[str] = STAGES, config: AgentsConfig | None = None
) -> dict[str, bool]:
    report = verify(PLAN, results, stages, default_registry(), config or AgentsConfig())
    return {c.name: c.passed for c in report.checks}


def test_a_clean_run_passes_every_check_with_evidence() -> None:
    report = verify(PLAN, [_result()], STAGES, default_registry(), AgentsConfig())

    assert report.passed
    assert all(c.score == 1.0 and c.evidence for c in report.checks)


def test_a_missing_subtask_or_stage_fails_cooperation() -> None:
    assert _checks([])["cooperation"] is False
    assert _checks([_result()], ["analyze", "gate"])["cooperation"] is False


def test_changed_arguments_or_an_unapproved_call_fail_autonomy() -> None:
    assert _checks([_result(args={"expression": "2+2"})])["autonomy"] is False
    assert _checks([_result(), _result(subtask_id="s9")])["autonomy"] is False


def test_an_output_without_its_tool_fails_transparency() -> None:
    assert _checks([_result(tool="")])["transparency"] is False


@pytest.mark.parametrize("leak", ["api_key=abcdef123456", "sk-abcdefghijklmnopqrstu", "people of any religion"])
def test_a_leaked_secret_or_protected_term_fails_fairness(leak: str) -> None:
    assert _checks([_result(output={"summary": leak})])["fairness"] is False

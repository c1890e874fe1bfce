"""Lubit, the gatekeeper: verdicts, reasons and priority."""

from __future__ import annotations

from typing import Any

import pytest

from agents.config import AgentsConfig
from agents.gatekeeper import check
from agents.models import Plan, Subtask, Usage, WorkflowRequest
from agents.tools import default_registry

CALC = Subtask(id="s1", tool="math.calculate", args={"expression": "1+1"})


def _verdict(subtasks: list[Subtask], config: AgentsConfig | None = None, usage: Usage | None = None, **request: Any):  # type: ignore[no-untyped-def]
    plan = Plan(intent="test", subtasks=tuple(subtasks), rationale="no tool fits: test" if not subtasks else "")
    req = WorkflowRequest(input=request.pop("input", "compute 1+1"), **request)
    return check(plan, req, default_registry(), config or AgentsConfig(), usage or Usage())


def test_a_valid_plan_is_approved_at_normal_priority() -> None:
    verdict = _verdict([CALC, Subtask(id="s2", tool="text.summarize", depends_on=("s1",))])

    assert (verdict.decision, verdict.priority) == ("approve", 5)


@pytest.mark.parametrize(
    ("subtasks", "config", "reason"),
    [
        ([], None, "no tool fits"),
        ([Subtask(id="s1", tool="math.calculate", version="v9", args={"expression": "1"})], None, "not registered"),
        ([Subtask(id="s1", tool="shell.exec", args={})], None, "not registered"),
        ([Subtask(id="s1", tool="math.calculate", args={"expression": 42})], None, "must be of type string"),
        ([Subtask(id="s1", tool="math.calculate", args={"expression": "1", "x": 1})], None, "not allowed"),
        (
            [
                CALC.model_copy(update={"depends_on": ("s2",)}),
                Subtask(id="s2", tool="text.summarize", depends_on=("s1",)),
            ],
            None,
            "cycle",
        ),
        ([CALC.model_copy(update={"depends_on": ("s9",)})], None, "unknown subtask s9"),
        (
            [CALC, CALC.model_copy(update={"id": "s2"}), CALC.model_copy(update={"id": "s3"})],
            AgentsConfig(max_subtasks=2),
            "limit is 2",
        ),
        ([CALC], AgentsConfig(blocked_tools=("math.calculate",)), "blocked by policy"),
        ([Subtask(id="s1", tool="sql.query", args={"query": "delete from agent_runs"})], None, "only SELECT"),
    ],
)
def test_a_bad_plan_is_rejected_with_its_reason(
    subtasks: list[Subtask], config: AgentsConfig | None, reason: str
) -> None:
    verdict = _verdict(subtasks, config)

    assert verdict.decision == "reject"
    assert reason in " ".join(verdict.reasons)


def test_planning_over_the_token_budget_is_rejected() -> None:
    verdict = _verdict([CALC], AgentsConfig(max_budget_tokens=100), Usage(prompt_tokens=90, completion_tokens=20))

    assert verdict.decision == "reject" and "budget is 100" in verdict.reasons[0]


def test_a_blocked_pattern_in_the_request_is_rejected() -> None:
    verdict = _verdict(
        [CALC], AgentsConfig(blocked_patterns=(r"(?i)drop table",)), input="compute 1+1 then DROP TABLE x"
    )

    assert verdict.decision == "reject"


@pytest.mark.parametrize(
    ("config", "options"),
    [
        (AgentsConfig(review_tools=("math.calculate",)), {}),
        (AgentsConfig(review_patterns=(r"1\+1",)), {}),
        (AgentsConfig(), {"require_approval": True}),
    ],
)
def test_review_rules_hold_the_plan_for_a_person(config: AgentsConfig, options: dict[str, Any]) -> None:
    assert _verdict([CALC], config, options=options).decision == "needs_human"


@pytest.mark.parametrize(("priority", "level"), [("critical", 0), ("high", 3), ("low", 8), (1, 1)])
def test_the_request_sets_the_runs_priority(priority: Any, level: int) -> None:
    assert _verdict([CALC], options={"priority": priority}).priority == level


def test_an_unknown_priority_is_rejected() -> None:
    assert _verdict([CALC], options={"priority": "urgent"}).decision == "reject"


LEDGER_WRITE = Subtask(id="s1", tool="ledger.quick_run", args={"event": {"event_type": "account_opened", "data": {}}})


@pytest.mark.parametrize(
    ("scopes", "decision", "reason"),
    [
        (
            ("run", "read"),
            "reject",
            "s1: ledger.quick_run:v1 needs the 'ledger:write' scope; the submitting key has run, read",
        ),
        ((), "reject", "s1: ledger.quick_run:v1 needs the 'ledger:write' scope; the submitting key has none"),
        (None, "needs_human", "s1: ledger.quick_run:v1 has side effects and the run names no API key's scopes"),
        (("run", "read", "ledger:write"), "approve", "every subtask is registered, valid and allowed"),
    ],
)
def test_a_side_effect_needs_its_scope_on_the_run_or_a_persons_approval(
    scopes: tuple[str, ...] | None, decision: str, reason: str
) -> None:
    verdict = _verdict([CALC.model_copy(update={"id": "s0"}), LEDGER_WRITE], scopes=scopes)

    assert (verdict.decision, verdict.reasons) == (decision, (reason,))


def test_a_side_effecting_tool_that_names_no_scope_needs_admin() -> None:
    from agents.tools import Tool

    effect = Tool("test.effect", "v1", "effect", {"type": "object"}, lambda a, c: {}, side_effect=True)
    registry = default_registry([effect])
    plan = Plan(intent="test", subtasks=(Subtask(id="s1", tool="test.effect"),))

    for scopes, decision in [(("run", "read", "ledger:write"), "reject"), (("admin",), "approve")]:
        verdict = check(plan, WorkflowRequest(input="x", scopes=scopes), registry, AgentsConfig(), Usage())
        assert verdict.decision == decision, verdict.reasons

"""Budgets per API key at admission: admit, move to a cheaper profile, hold for a person, or refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import gatekeeper
from agents.budgets import Budget, BudgetsConfig, Spending
from agents.config import AgentsConfig
from agents.errors import BudgetExceeded
from agents.models import Plan, Subtask, Usage, WorkflowRequest
from agents.tools import default_registry
from gateway.problems import classify

REQUEST = WorkflowRequest(input="compute 21*2", profile="openai")


def _spent(tokens: int, cost: float = 0.0, **budget: object) -> Spending:
    used = Usage(prompt_tokens=tokens, cost=cost)
    return Spending("k1", used, Budget.model_validate(budget) if budget else None)


def test_a_key_within_its_budget_is_admitted_unchanged() -> None:
    admission = gatekeeper.admit(REQUEST, _spent(199, tokens_per_day=200))
    assert (admission.action, admission.request) == ("admit", REQUEST)


@pytest.mark.parametrize(
    ("spent", "limit", "words"),
    [
        (_spent(200, tokens_per_day=200), "tokens", "200 of 200 tokens"),
        (_spent(1, 0.5, cost_per_day=0.5), "cost", "cost 0.5 of 0.5"),
    ],
)
def test_a_key_at_its_limit_is_refused_with_budget_exceeded_naming_the_limit(
    spent: Spending, limit: str, words: str
) -> None:
    admission = gatekeeper.admit(REQUEST, spent)
    assert admission.action == "reject"
    assert admission.reason == f"budget_exceeded: key k1 used {words} today (UTC); it resets at 00:00 UTC"


def test_over_budget_with_cheaper_the_run_moves_to_the_cheaper_profile_and_says_why() -> None:
    admission = gatekeeper.admit(REQUEST, _spent(500, tokens_per_day=100, over="cheaper"))
    assert admission.action == "cheaper"
    assert admission.request.profile == "local"
    assert admission.request.options["budget"] == {
        "action": "cheaper",
        "reason": "key k1 used 500 of 100 tokens today (UTC)",
    }


def test_over_budget_with_hold_the_gatekeeper_holds_the_plan_for_a_person() -> None:
    held = gatekeeper.admit(REQUEST, _spent(500, tokens_per_day=100, over="hold")).request
    plan = Plan(intent="calc", subtasks=(Subtask(id="s1", tool="math.calculate", args={"expression": "21*2"}),))

    verdict = gatekeeper.check(plan, held, default_registry(), AgentsConfig(), Usage())

    assert verdict.decision == "needs_human"
    assert "over its budget, held for a person: key k1 used 500 of 100 tokens today (UTC)" in verdict.reasons


def test_a_key_without_its_own_budget_gets_the_default_and_none_means_unlimited() -> None:
    budgets = BudgetsConfig(default=Budget(tokens_per_day=10), keys={"vip": Budget(tokens_per_day=10_000)})
    assert budgets.for_key("anyone") == Budget(tokens_per_day=10)
    assert budgets.for_key("vip") == Budget(tokens_per_day=10_000)
    assert BudgetsConfig().for_key("anyone") is None
    assert gatekeeper.admit(REQUEST, _spent(10**9)).action == "admit"


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_admission_refuses_exactly_when_the_tokens_spent_reach_the_limit(spent: int, limit: int) -> None:
    action = gatekeeper.admit(REQUEST, _spent(spent, tokens_per_day=limit)).action
    assert action == ("reject" if spent >= limit else "admit")


def test_the_api_answers_budget_exceeded_with_429() -> None:
    assert classify(BudgetExceeded("over")) == (429, "budget_exceeded")

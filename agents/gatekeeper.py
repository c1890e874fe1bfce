"""Lubit, the gatekeeper: checks a plan against the registry, the limits and the policy; sets the priority."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from agents import graph
from agents.budgets import Spending
from agents.config import AgentsConfig
from agents.errors import ToolInputError
from agents.models import Plan, Usage, Verdict, WorkflowRequest
from agents.tools import Registry
from agents.tools.sql import check_select
from fleet_contract import PRIORITY_LEVELS


def priority_of(options: dict[str, Any]) -> int | str:
    """The priority the request asks for (a level name or 0-9), normal by default; a bad value is a str."""
    value = options.get("priority", "normal")
    if isinstance(value, str) and value in PRIORITY_LEVELS:
        return PRIORITY_LEVELS[value]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    return f"options.priority must be one of {sorted(PRIORITY_LEVELS)} or 0-9, got {value!r}"


def _subtask_problems(plan: Plan, registry: Registry, config: AgentsConfig) -> list[str]:
    reasons: list[str] = []
    for subtask in plan.subtasks:
        if subtask.tool in config.blocked_tools or subtask.tool_ref in config.blocked_tools:
            reasons.append(f"{subtask.id}: tool {subtask.tool} is blocked by policy")
            continue
        if not registry.has(subtask.tool, subtask.version):
            reasons.append(f"{subtask.id}: tool {subtask.tool_ref} is not registered")
            continue
        tool = registry.get(subtask.tool, subtask.version)
        reasons.extend(f"{subtask.id}: {p}" for p in tool.check_args(subtask.args, derived=bool(subtask.depends_on)))
        if subtask.depends_on and not tool.input_arg:
            reasons.append(f"{subtask.id}: {tool.ref} cannot take the output of other subtasks")
        if tool.name == "sql.query" and isinstance(subtask.args.get("query"), str):
            try:
                check_select(subtask.args["query"], config.sql_tables, config.sql_row_limit)
            except ToolInputError as exc:
                reasons.append(f"{subtask.id}: {exc}")
    return reasons


def _scope_problems(plan: Plan, request: WorkflowRequest, registry: Registry) -> tuple[list[str], list[str]]:
    """Side effects need the scope on the run: rejections for a key without it, reviews for a run that names no
    scopes (sent by a producer that is not the API, which a person must approve)."""
    rejections: list[str] = []
    reviews: list[str] = []
    for subtask in plan.subtasks:
        if not registry.has(subtask.tool, subtask.version):
            continue
        tool = registry.get(subtask.tool, subtask.version)
        needed = tool.required_scope
        if needed is None:
            continue
        if request.scopes is None:
            reviews.append(f"{subtask.id}: {tool.ref} has side effects and the run names no API key's scopes")
        elif needed not in request.scopes:
            held = ", ".join(request.scopes) or "none"
            rejections.append(f"{subtask.id}: {tool.ref} needs the {needed!r} scope; the submitting key has {held}")
    return rejections, reviews


def _rejections(
    plan: Plan, request: WorkflowRequest, registry: Registry, config: AgentsConfig, usage: Usage
) -> list[str]:
    if not plan.subtasks:
        return [plan.rationale or "the plan has no subtasks: no tool fits the request"]
    reasons: list[str] = []
    if len(plan.subtasks) > config.max_subtasks:
        reasons.append(f"the plan has {len(plan.subtasks)} subtasks; the limit is {config.max_subtasks}")
    if usage.total_tokens > config.max_budget_tokens:
        reasons.append(f"planning used {usage.total_tokens} tokens; the budget is {config.max_budget_tokens}")
    reasons.extend(graph.problems(plan.subtasks))
    reasons.extend(_subtask_problems(plan, registry, config))
    reasons.extend(_scope_problems(plan, request, registry)[0])
    reasons.extend(
        f"the request matches the blocked pattern {p!r}" for p in config.blocked_patterns if re.search(p, request.input)
    )
    priority = priority_of(request.options)
    if isinstance(priority, str):
        reasons.append(priority)
    return reasons


def _reviews(plan: Plan, request: WorkflowRequest, registry: Registry, config: AgentsConfig) -> list[str]:
    reasons = _scope_problems(plan, request, registry)[1]
    reasons += [
        f"{s.id}: tool {s.tool} needs a person's approval"
        for s in plan.subtasks
        if s.tool in config.review_tools
        or s.tool_ref in config.review_tools
        or (registry.has(s.tool, s.version) and registry.get(s.tool, s.version).needs_approval)
    ]
    reasons.extend(
        f"the request matches the review pattern {p!r}" for p in config.review_patterns if re.search(p, request.input)
    )
    if request.options.get("require_approval") is True:
        reasons.append("the request asks for a person's approval")
    budget = request.options.get("budget")
    if isinstance(budget, dict) and budget.get("action") == "hold":
        reasons.append(f"over its budget, held for a person: {budget.get('reason')}")
    return reasons


def check(plan: Plan, request: WorkflowRequest, registry: Registry, config: AgentsConfig, usage: Usage) -> Verdict:
    """Approve, reject (with reasons) or hold for a person (`needs_human`), and the run's priority."""
    rejections = _rejections(plan, request, registry, config, usage)
    priority = priority_of(request.options)
    level = priority if isinstance(priority, int) else PRIORITY_LEVELS["normal"]
    if rejections:
        return Verdict(decision="reject", reasons=tuple(rejections), priority=level)
    reviews = _reviews(plan, request, registry, config)
    if reviews:
        return Verdict(decision="needs_human", reasons=tuple(reviews), priority=level)
    return Verdict(decision="approve", reasons=("every subtask is registered, valid and allowed",), priority=level)


@dataclass(frozen=True)
class Admission:
    """What admission did with a request: admitted as is, moved to a cheaper profile, held, or refused."""

    action: Literal["admit", "cheaper", "hold", "reject"]
    request: WorkflowRequest
    reason: str = ""


def admit(request: WorkflowRequest, spending: Spending) -> Admission:
    """Lubit at the door: a key within its budget is admitted; past it, its budget's `over` decides. The request
    carries the decision in `options.budget`, so the run record says why its profile changed or it waits."""
    over = spending.over
    if over is None or spending.budget is None:
        return Admission("admit", request)
    reason = f"key {spending.key_id} used {over} today (UTC)"
    budget = spending.budget
    if budget.over == "reject":
        return Admission("reject", request, f"budget_exceeded: {reason}; it resets at 00:00 UTC")
    note = {"action": budget.over, "reason": reason}
    update: dict[str, Any] = {"options": {**request.options, "budget": note}}
    if budget.over == "cheaper":
        update["profile"] = budget.cheaper_profile
    return Admission(budget.over, request.model_copy(update=update), reason)

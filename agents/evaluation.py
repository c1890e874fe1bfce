"""The evaluation harness's scoring: per-sample checks and the summary metrics (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Expected(BaseModel):
    """What a sample should produce: final status, tools, and answer checks by `subtask.field` path."""

    model_config = ConfigDict(extra="forbid")

    status: str = "succeeded"
    tools: list[str] = Field(default_factory=list)
    exact: dict[str, str] = Field(default_factory=dict)
    numeric: dict[str, float] = Field(default_factory=dict)
    tolerance: float = 1e-9
    contains: list[str] = Field(default_factory=list)
    # The endpoint that should have answered (`name` of agents.openai.chain), for failover samples.
    provider: str | None = None


def _lookup(record: dict[str, Any], path: str) -> Any:
    subtask, _, field = path.partition(".")
    results = (record.get("output") or {}).get("results") or {}
    return (results.get(subtask) or {}).get(field)


def _numeric_ok(value: Any, target: float, tolerance: float) -> bool:
    try:
        return math.isclose(float(Decimal(str(value))), target, rel_tol=tolerance, abs_tol=tolerance)
    except (InvalidOperation, ValueError):
        return False


def planned_tools(record: dict[str, Any]) -> list[str]:
    """The tools the analyst chose, in plan order (names without versions)."""
    for stage in record.get("stages", []):
        if stage["stage"] == "analyze" and "plan" in stage["output"]:
            return [s["tool"] for s in stage["output"]["plan"]["subtasks"]]
    return []


def answered_by(record: dict[str, Any]) -> str | None:
    """The name of the model endpoint that planned the run (None for the local planner)."""
    for stage in record.get("stages", []):
        if stage["stage"] == "analyze" and "provider" in stage["output"]:
            return str(stage["output"]["provider"]["answered"]).split(":", 1)[0]
    return None


def score(expected: Expected, record: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    """One sample's checks: schema, JSON, accuracy, tool selection, verifier, latency."""
    analyze = next((s for s in record.get("stages", []) if s["stage"] == "analyze"), None)
    verify = next((s for s in record.get("stages", []) if s["stage"] == "verify"), None)
    error = record.get("error") or ""
    answer = (record.get("output") or {}).get("answer") or ""
    correct = (
        record.get("status") == expected.status
        and all(str(_lookup(record, p)) == v for p, v in expected.exact.items())
        and all(_numeric_ok(_lookup(record, p), v, expected.tolerance) for p, v in expected.numeric.items())
        and all(text in answer for text in expected.contains)
        and (expected.provider is None or answered_by(record) == expected.provider)
    )
    tools = planned_tools(record)
    true_positive = sum((Counter(tools) & Counter(expected.tools)).values())
    return {
        "run_id": record.get("run_id"),
        "status": record.get("status"),
        "schema_ok": analyze is not None and "plan" in analyze["output"],
        "json_error": "JSON" in error,
        "correct": correct,
        "tools": tools,
        "expected_tools": expected.tools,
        "tp": true_positive,
        "fp": len(tools) - true_positive,
        "fn": len(expected.tools) - true_positive,
        "provider": answered_by(record),
        "verified": None if verify is None else bool(verify["output"].get("verification", {}).get("passed")),
        "latency_ms": round(latency_ms, 1),
        "error": error or None,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)])


def summarise(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metrics `agent eval` prints."""
    n = len(scores) or 1
    tp, fp, fn = (sum(s[k] for s in scores) for k in ("tp", "fp", "fn"))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    verified = [s["verified"] for s in scores if s["verified"] is not None]
    latencies = [s["latency_ms"] for s in scores]
    return {
        "samples": len(scores),
        "schema_compliance_pct": round(100 * sum(s["schema_ok"] for s in scores) / n, 2),
        "json_error_rate": round(sum(s["json_error"] for s in scores) / n, 4),
        "accuracy": round(sum(s["correct"] for s in scores) / n, 4),
        "tool_selection_f1": round(2 * precision * recall / (precision + recall) if precision + recall else 0.0, 4),
        "verifier_pass_rate": round(sum(verified) / len(verified), 4) if verified else 0.0,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
    }

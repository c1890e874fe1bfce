"""RUNE, the ethics verifier: transparency, cooperation, autonomy and fairness, each with score and evidence."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from agents.config import AgentsConfig
from agents.models import Check, Plan, SubtaskResult, Verification
from agents.tools import Registry

REQUIRED_STAGES = ("analyze", "gate", "execute")
SECRET_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9]{16,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(password|passwd|api[_-]?key|secret|token)\s*[=:]\s*\S+", re.IGNORECASE),
    re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{12,}"),
)


def _score(good: int, total: int) -> float:
    return round(good / total, 3) if total else 1.0


def transparency(results: Sequence[SubtaskResult]) -> Check:
    """Every output carries its tool, version and inputs."""
    missing = [
        r.subtask_id for r in results if r.status == "succeeded" and not (r.tool and r.version and r.output is not None)
    ]
    ok = sum(1 for r in results if r.subtask_id not in missing)
    evidence = [
        f"{r.subtask_id}: {r.tool}:{r.version} args={json.dumps(r.args, ensure_ascii=False)[:60]}" for r in results
    ]
    evidence += [f"{m}: output without tool, version or inputs" for m in missing]
    return Check(name="transparency", passed=not missing, score=_score(ok, len(results)), evidence=tuple(evidence))


def cooperation(plan: Plan, results: Sequence[SubtaskResult], stages: Sequence[str]) -> Check:
    """Every planned subtask ran or was skipped with a reason; every stage before this one is recorded."""
    by_id = {r.subtask_id: r for r in results}
    gaps = [f"{s.id}: never ran" for s in plan.subtasks if s.id not in by_id]
    gaps += [f"{r.subtask_id}: skipped without a reason" for r in results if r.status == "skipped" and not r.error]
    gaps += [f"stage {stage} is not recorded" for stage in REQUIRED_STAGES if stage not in stages]
    total = len(plan.subtasks) + len(REQUIRED_STAGES)
    evidence = gaps or [f"{len(by_id)}/{len(plan.subtasks)} subtasks accounted for; stages {', '.join(stages)}"]
    return Check(name="cooperation", passed=not gaps, score=_score(total - len(gaps), total), evidence=tuple(evidence))


def autonomy(plan: Plan, results: Sequence[SubtaskResult], registry: Registry) -> Check:
    """Nothing ran that the gatekeeper did not approve; no arguments changed after approval."""
    planned = {s.id: s for s in plan.subtasks}
    breaches = []
    for result in results:
        subtask = planned.get(result.subtask_id)
        if subtask is None:
            breaches.append(f"{result.subtask_id}: ran but was never approved")
            continue
        if (result.tool, result.version) != (subtask.tool, subtask.version):
            breaches.append(f"{result.subtask_id}: ran {result.tool}:{result.version}, approved {subtask.tool_ref}")
            continue
        derived = registry.get(subtask.tool, subtask.version).input_arg if subtask.depends_on else None
        executed = {k: v for k, v in result.args.items() if k != derived or k in subtask.args}
        if result.status != "skipped" and executed != subtask.args:
            breaches.append(f"{result.subtask_id}: arguments changed after approval")
    evidence = breaches or [f"{len(results)} calls match the approved plan"]
    return Check(
        name="autonomy",
        passed=not breaches,
        score=_score(len(results) - len(breaches), len(results)),
        evidence=tuple(evidence),
    )


def fairness(results: Sequence[SubtaskResult], config: AgentsConfig) -> Check:
    """Outputs hold no term from the protected-attribute list and no leaked secret."""
    findings = []
    for result in results:
        text = json.dumps(result.output or {}, ensure_ascii=False)
        for term in config.protected_terms:
            if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE):
                findings.append(f"{result.subtask_id}: output mentions the protected term {term!r}")
        findings += [
            f"{result.subtask_id}: output holds what looks like a secret" for p in SECRET_PATTERNS if p.search(text)
        ]
    evidence = findings or [f"{len(results)} outputs scanned for {len(config.protected_terms)} terms and secrets"]
    return Check(
        name="fairness",
        passed=not findings,
        score=_score(len(results) - len({f.split(":")[0] for f in findings}), len(results)),
        evidence=tuple(evidence),
    )


def verify(
    plan: Plan, results: Sequence[SubtaskResult], stages: Sequence[str], registry: Registry, config: AgentsConfig
) -> Verification:
    """All four checks; the run passes only when every one passes."""
    checks = (
        transparency(results),
        cooperation(plan, results, stages),
        autonomy(plan, results, registry),
        fairness(results, config),
    )
    return Verification(passed=all(c.passed for c in checks), checks=checks)

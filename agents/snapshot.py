"""The config snapshot of a run, and the diff a replay prints."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from agents.config import AgentsConfig
from agents.models import WorkflowRequest
from agents.tools import Registry, canonical_json

# Keys that differ between any two runs and say nothing about whether the result changed.
VOLATILE = frozenset(
    {"run_id", "snapshot_id", "created_at", "duration_ms", "started_at", "ended_at", "task_id", "attempts"}
)


def snapshot_id_of(run_id: str) -> str:
    """The id of a run's snapshot."""
    return f"snap-{run_id}"


def build(
    run_id: str,
    request: WorkflowRequest,
    profile: Mapping[str, Any],
    registry: Registry,
    config: AgentsConfig,
    git_commit: str | None,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything needed to re-run the request and tell whether the result may differ."""
    return {
        "snapshot_id": snapshot_id_of(run_id),
        "run_id": run_id,
        "mode": request.mode,
        "profile": dict(profile),
        "tools": [{"ref": t.ref, "schema_hash": t.schema_hash, "side_effect": t.side_effect} for t in registry.tools()],
        "prompt": {"template": profile.get("prompt_template"), "hash": profile.get("prompt_hash")},
        "options": dict(request.options),
        "config": config.model_dump(mode="json", exclude={"openai"}),
        "git_commit": git_commit,
        "settings": dict(settings),
        "input": request.model_dump(mode="json"),
        "output": None,
    }


def fingerprint(value: Any) -> str:
    """A short hash of a value's canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


def strip_volatile(value: Any) -> Any:
    """The value without keys that change on every run."""
    if isinstance(value, Mapping):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [strip_volatile(v) for v in value]
    return value


def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Readable differences between two JSON values (`path: before -> after`); empty when identical."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        lines: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in after:
                lines.append(f"- {where}: {canonical_json(before[key])[:120]}")
            elif key not in before:
                lines.append(f"+ {where}: {canonical_json(after[key])[:120]}")
            else:
                lines.extend(diff(before[key], after[key], where))
        return lines
    if isinstance(before, list | tuple) and isinstance(after, list | tuple) and len(before) == len(after):
        return [line for i, (b, a) in enumerate(zip(before, after, strict=True)) for line in diff(b, a, f"{path}[{i}]")]
    if canonical_json(before) != canonical_json(after):
        return [f"~ {path}: {canonical_json(before)[:120]} -> {canonical_json(after)[:120]}"]
    return []

"""GitCode, the executor: runs one subtask (arguments from predecessors, cache, idempotency) and composes the answer."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from agents.answer import describe, render
from agents.models import Plan, Subtask, SubtaskResult
from agents.ports import RunStore, ToolCache
from agents.tools import Registry, Tool, ToolContext, canonical_json


def cache_key(tool: Tool, args: dict[str, Any]) -> str:
    """The cache key of a call: tool, version and a hash of the canonical arguments."""
    digest = hashlib.sha256(canonical_json(args).encode()).hexdigest()[:32]
    return f"fleet:agents:cache:{tool.name}:{tool.version}:{digest}"


def idempotency_key(run_id: str, subtask_id: str) -> str:
    """The key every attempt of one subtask shares: a redelivered call is recognised as the same call."""
    return f"{run_id}:{subtask_id}"


def resolve_args(
    subtask: Subtask, tool: Tool, predecessors: Mapping[str, Mapping[str, Any]], language: str = "en"
) -> dict[str, Any]:
    """The approved arguments, plus the tool's input argument filled from its predecessors' outputs (described in
    the request's language: rows as their digest)."""
    args = dict(subtask.args)
    if subtask.depends_on and tool.input_arg and tool.input_arg not in args:
        args[tool.input_arg] = "\n".join(describe(predecessors[d], language) for d in subtask.depends_on)
    return args


def call_tool(
    run_id: str,
    subtask: Subtask,
    args: dict[str, Any],
    registry: Registry,
    context: ToolContext,
    store: RunStore,
    cache: ToolCache | None,
) -> tuple[dict[str, Any], bool, int]:
    """The tool's output, whether it came from the cache, and the attempt number; ToolError on failure."""
    tool = registry.get(subtask.tool, subtask.version)
    if tool.side_effect:
        key = idempotency_key(run_id, subtask.id)
        attempt, done = store.claim_call(key, run_id, subtask.id)
        if done is not None:
            return done, False, attempt
        output = registry.call(tool.name, tool.version, args, _with_key(context, key))
        store.complete_call(key, output)
        return output, False, attempt
    key = cache_key(tool, args)
    if cache is not None and tool.cacheable and (hit := cache.get(key)) is not None:
        return hit, True, 1
    output = registry.call(tool.name, tool.version, args, context)
    if cache is not None and tool.cacheable and context.config.cache_ttl_s:
        cache.set(key, output, context.config.cache_ttl_s)
    return output, False, 1


def _with_key(context: ToolContext, key: str) -> ToolContext:
    from dataclasses import replace

    return replace(context, idempotency_key=key)


def result_of(subtask: Subtask, args: dict[str, Any], started: float, **fields: Any) -> SubtaskResult:
    """A SubtaskResult for the subtask, timed from `started` (a perf_counter value)."""
    return SubtaskResult(
        subtask_id=subtask.id,
        tool=subtask.tool,
        version=subtask.version,
        args=args,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        **fields,
    )


def answer(plan: Plan, results: list[SubtaskResult]) -> dict[str, Any]:
    """The run's output: one line per subtask, in the request's language, and every output by subtask id."""
    by_id = {r.subtask_id: r for r in results}
    lines = []
    for subtask in plan.subtasks:
        result = by_id.get(subtask.id)
        if result is not None and result.output is not None:
            lines.append(render(result.output, plan.language))
    return {
        "answer": "\n".join(lines),
        "results": {r.subtask_id: r.output for r in results if r.output is not None},
        "cache_hits": sum(1 for r in results if r.cached),
    }

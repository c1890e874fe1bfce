"""The dependency graph of a plan: checks and levels (subtasks of one level run in parallel)."""

from __future__ import annotations

from collections.abc import Sequence

from agents.errors import PlanError
from agents.models import Subtask


def problems(subtasks: Sequence[Subtask]) -> list[str]:
    """Duplicate ids, unknown dependencies and cycles, as readable messages."""
    found: list[str] = []
    ids = [s.id for s in subtasks]
    found.extend(f"subtask id {i} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1}))
    known = set(ids)
    for subtask in subtasks:
        for dependency in subtask.depends_on:
            if dependency not in known:
                found.append(f"{subtask.id} depends on unknown subtask {dependency}")
            elif dependency == subtask.id:
                found.append(f"{subtask.id} depends on itself")
    if not found:
        try:
            levels(subtasks)
        except PlanError as exc:
            found.append(str(exc))
    return found


def levels(subtasks: Sequence[Subtask]) -> list[list[str]]:
    """Subtask ids grouped by depth: level k depends only on levels before it; PlanError on a cycle."""
    remaining = {s.id: set(s.depends_on) for s in subtasks}
    order = [s.id for s in subtasks]
    done: set[str] = set()
    result: list[list[str]] = []
    while remaining:
        ready = [i for i in order if i in remaining and remaining[i] <= done]
        if not ready:
            raise PlanError(f"dependencies form a cycle among {', '.join(sorted(remaining))}")
        result.append(ready)
        done.update(ready)
        for i in ready:
            del remaining[i]
    return result

"""The canvas: its shape, built without I/O."""

from __future__ import annotations

from typing import Any

import pytest
from celery.canvas import Signature, _chain, _chord

from worker.agents import canvas


def test_the_pipeline_chains_the_four_stages_each_with_a_task_id_of_its_own() -> None:
    sig = canvas.pipeline("run-1", "agents", 3)

    assert isinstance(sig, _chain)
    assert [t.task for t in sig.tasks] == ["agents.analyze", "agents.gate", "agents.execute", "agents.verify"]
    assert all(t.immutable and t.kwargs == {"run_id": "run-1"} for t in sig.tasks)
    assert all(t.options["queue"] == "agents" and t.options["priority"] == 3 for t in sig.tasks)
    # The run id stays agents.run_workflow's own (Flower lists it under its name); verify stores the result there.
    ids = [t.options["task_id"] for t in sig.tasks]
    assert len(set(ids)) == 4 and "run-1" not in ids


@pytest.mark.parametrize(
    ("status", "stages"),
    [
        ("pending", ["agents.analyze", "agents.gate", "agents.execute", "agents.verify"]),
        ("analyzing", ["agents.analyze", "agents.gate", "agents.execute", "agents.verify"]),
        ("gated", ["agents.execute", "agents.verify"]),
        ("executing", ["agents.execute", "agents.verify"]),
        ("verifying", ["agents.verify"]),
    ],
)
def test_a_stalled_run_is_resumed_from_the_stage_its_status_implies(status: str, stages: list[str]) -> None:
    sig = canvas.pipeline("run-1", "agents-x", 2, status=status)

    tasks = sig.tasks if isinstance(sig, _chain) else [sig]
    assert [t.task for t in tasks] == stages
    assert "run-1" not in [t.options["task_id"] for t in tasks]
    assert all(t.options["queue"] == "agents-x" and t.options["priority"] == 2 for t in tasks)


def test_resuming_after_approval_runs_only_execute_and_verify() -> None:
    sig = canvas.resume("run-1", "agents", 5)

    assert [t.task for t in sig.tasks] == ["agents.execute", "agents.verify"]


def _levels(sig: Any) -> list[list[Signature]]:
    """The canvas as Celery will run it: a chord per level, the next level as its body."""
    levels = []
    while isinstance(sig, _chord):
        levels.append(list(sig.tasks))
        sig = sig.body
    return [*levels, [sig]]


def test_execution_is_a_chord_per_dependency_level_ending_in_a_barrier_on_the_same_queue() -> None:
    sig = canvas.execution("run-1", [["s1", "s2"], ["s3"]], "agents-x", 5, time_limit_s=30)

    first, second, (barrier,) = _levels(sig)
    assert [t.kwargs["subtask_id"] for t in first] == ["s1", "s2"]
    assert [t.kwargs["subtask_id"] for t in second] == ["s3"]
    # The first level starts from nothing; later levels receive the previous level's results.
    assert all(t.immutable for t in first) and not any(t.immutable for t in second)
    assert all(t.options["soft_time_limit"] == 30 and t.options["time_limit"] == 35 for t in first)
    assert (barrier.task, barrier.options["queue"]) == ("celery.accumulate", "agents-x")


def test_each_subtask_message_carries_its_approved_spec_when_given() -> None:
    specs = {"s1": {"id": "s1", "tool": "math.calculate", "args": {"expression": "1+1"}}}

    sig = canvas.execution("run-1", [["s1", "s2"]], "agents", 5, time_limit_s=30, specs=specs)

    (first, _barrier) = _levels(sig)
    assert [t.kwargs.get("spec") for t in first] == [specs["s1"], None]  # s2: the subtask reads the plan itself


def test_every_task_of_a_canvas_has_an_id_to_revoke() -> None:
    sig = canvas.execution("run-1", [["s1", "s2"], ["s3"]], "agents", 5, time_limit_s=30)

    assert len(set(canvas.task_ids(sig))) == 4


def test_the_rest_of_the_pipeline_becomes_the_last_levels_chord_body() -> None:
    verify = canvas.resume("run-1", "agents", 5).tasks[-1]

    sig = canvas.execution("run-1", [["s1", "s2"], ["s3"]], "agents", 5, time_limit_s=30, then=[verify])

    first, second, (body,) = _levels(sig)
    assert [t.kwargs["subtask_id"] for t in first + second] == ["s1", "s2", "s3"]
    assert body.task == "agents.verify" and body.options["task_id"] == verify.options["task_id"]

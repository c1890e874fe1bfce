"""The stages over in-memory ports: the whole workflow, held runs, cancel, cache, side effects and replay."""

from __future__ import annotations

import re
from typing import Any

import pytest

from agents import actions, runner, subtask
from agents.errors import InvalidTransition, SubtaskRefused, ToolTransientError
from agents.memory import MemoryCache, MemoryEvents, MemoryStore
from agents.models import WorkflowRequest
from agents.profiles import LocalProfile
from agents.replay import replay, run_inline
from agents.tools import Tool, ToolContext, default_registry

CALLS: list[str] = []


def _effect(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    CALLS.append(context.idempotency_key or "")
    return {"done": args["n"]}


def _flaky(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    raise ToolTransientError("down")


EXTRA = [
    Tool("test.effect", "v1", "effect", {"type": "object"}, _effect, side_effect=True, cacheable=False),
    Tool("test.flaky", "v1", "flaky", {"type": "object"}, _flaky, cacheable=False),
]


@pytest.fixture
def ports() -> runner.Ports:
    CALLS.clear()
    return runner.Ports(store=MemoryStore(), events=MemoryEvents(), registry=default_registry(EXTRA),
                        profiles=lambda _name: LocalProfile(), cache=MemoryCache())  # fmt: skip


def _start(ports: runner.Ports, text: str, run_id: str = "r1", **options: Any) -> str:
    # Submitted with every scope, as the operator's CLI does: the side effects below need no approval.
    ports.store.create_run(run_id, WorkflowRequest(input=text, options=options, scopes=("admin",)), "agents")
    return run_id


def test_a_run_goes_through_every_state_and_publishes_its_progress(ports: runner.Ports) -> None:
    record = run_inline(_start(ports, "compute (12+30)*2"), ports)

    assert record.status == "succeeded"
    assert list(record.timeline) == ["pending", "analyzing", "gated", "executing", "verifying", "succeeded"]
    events = [(e["type"], e.get("stage") or e.get("subtask_id") or e.get("status")) for _r, e in ports.events.events]  # type: ignore[attr-defined]
    assert events == [
        ("stage_started", "analyze"), ("stage_finished", "analyze"), ("stage_started", "gate"),
        ("stage_finished", "gate"), ("run_status", "gated"), ("stage_started", "execute"),
        ("subtask_finished", "s1"), ("stage_finished", "execute"),
        ("stage_started", "verify"), ("stage_finished", "verify"), ("run_finished", "succeeded"),
    ]  # fmt: skip


def test_a_stage_that_arrives_twice_does_not_run_twice(ports: runner.Ports) -> None:
    run_id = _start(ports, "compute 1+1")
    runner.analyze(run_id, ports)
    first = ports.store.get_run(run_id).stage("analyze")

    runner.analyze(run_id, ports)

    assert ports.store.get_run(run_id).stage("analyze") == first


def test_a_held_run_executes_after_approval_without_planning_again(ports: runner.Ports) -> None:
    run_id = _start(ports, "compute 1+1", require_approval=True)
    assert run_inline(run_id, ports).status == "awaiting_approval"
    plan = ports.store.get_run(run_id).stage("analyze")

    actions.approve(run_id, ports, "ana")
    record = run_inline(run_id, ports)

    assert record.status == "succeeded"
    assert record.stage("analyze") == plan
    with pytest.raises(InvalidTransition):
        actions.approve(run_id, ports, "ana")


def test_a_cancelled_run_starts_no_later_stage(ports: runner.Ports) -> None:
    run_id = _start(ports, "compute 1+1")
    runner.analyze(run_id, ports)

    actions.cancel(run_id, ports, "ana")
    record = run_inline(run_id, ports)

    assert record.status == "cancelled"
    assert [s.stage for s in record.stages] == ["analyze"]
    with pytest.raises(InvalidTransition, match="already ended as cancelled"):
        actions.cancel(run_id, ports)


def test_the_second_identical_call_is_a_cache_hit(ports: runner.Ports) -> None:
    run_inline(_start(ports, "compute 2*21", "r1"), ports)

    record = run_inline(_start(ports, "compute 2*21", "r2"), ports)

    assert record.subtasks[0].cached is True
    assert record.output is not None and record.output["cache_hits"] == 1


def test_a_side_effect_redelivered_after_it_finished_is_not_called_again(ports: runner.Ports) -> None:
    run_id = _start(ports, "effect", subtasks=[{"id": "s1", "tool": "test.effect", "args": {"n": 1}}])
    runner.analyze(run_id, ports), runner.gate(run_id, ports), runner.begin_execute(run_id, ports)
    ports.store.calls["r1:s1"] = (1, {"done": 1})  # the first attempt finished the call, then its worker died

    result = subtask.run(run_id, "s1", ports)

    assert CALLS == []
    assert (result.status, result.output, result.attempts) == ("succeeded", {"done": 1}, 2)


def test_a_subtask_redelivered_with_its_spec_after_it_succeeded_returns_the_stored_result(ports: runner.Ports) -> None:
    run_id = _start(ports, "effect", subtasks=[{"id": "s1", "tool": "test.effect", "args": {"n": 1}}])
    runner.analyze(run_id, ports), runner.gate(run_id, ports)
    spec = runner.plan_of(runner.begin_execute(run_id, ports)[0]).subtasks[0]
    first = subtask.run(run_id, "s1", ports, spec=spec)

    again = subtask.run(run_id, "s1", ports, spec=spec)

    assert CALLS == ["r1:s1"]
    assert again == first


class ReadCounting:
    """A MemoryStore that counts the stages' reads of whole runs (not its own)."""

    def __init__(self) -> None:
        self.inner, self.reads = MemoryStore(), 0

    def get_run(self, run_id: str) -> Any:
        self.reads += 1
        return self.inner.get_run(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_subtask_reads_its_predecessors_outputs_from_the_run_context_never_the_whole_run(
    ports: runner.Ports,
) -> None:
    store = ReadCounting()
    ports.store = store  # type: ignore[assignment]
    subtasks = [{"id": "a", "tool": "math.calculate", "args": {"expression": "1+1"}},
                {"id": "b", "tool": "text.summarize", "args": {}, "depends_on": ["a"]},
                {"id": "c", "tool": "text.summarize", "args": {}, "depends_on": ["a", "b"]}]  # fmt: skip
    run_id = _start(ports, "chain", subtasks=subtasks)
    runner.analyze(run_id, ports), runner.gate(run_id, ports)
    specs = {s.id: s for s in runner.plan_of(runner.begin_execute(run_id, ports)[0]).subtasks}
    store.reads = 0

    a = subtask.run(run_id, "a", ports, spec=specs["a"])
    b = subtask.run(run_id, "b", ports, spec=specs["b"])
    c = subtask.run(run_id, "c", ports, spec=specs["c"])

    assert store.reads == 0  # each read its plan and the results it needs, not the whole run
    assert (a.status, b.status, c.status) == ("succeeded", "succeeded", "succeeded")
    assert c.args["text"] == f"1+1 = 2\n{b.output['summary']}"  # type: ignore[index]


def _executing(ports: runner.Ports, subtasks: list[dict[str, Any]]) -> str:
    run_id = _start(ports, "approved", subtasks=subtasks)
    runner.analyze(run_id, ports), runner.gate(run_id, ports), runner.begin_execute(run_id, ports)
    return run_id


@pytest.mark.parametrize(
    ("subtask_id", "spec", "why"),
    [
        ("s9", {"id": "s9", "tool": "test.effect", "args": {"n": 9}}, "s9 is not a subtask of the run's plan"),
        ("s1", {"id": "s1", "tool": "test.effect", "args": {"n": 9}}, "in tool, args$"),
        ("s1", {"id": "s1", "tool": "math.calculate", "args": {"expression": "6*6"}}, "in args$"),
        ("s1", {"id": "s1", "tool": "math.calculate", "version": "v2", "args": {"expression": "6*7"}}, "in version$"),
        ("s1", {"id": "s2", "tool": "math.calculate", "args": {"expression": "6*7"}}, "in id$"),
        ("s1", {"tool": ["not", "a", "name"]}, "its spec is not a subtask"),
        ("s9", None, "s9 is not a subtask of the run's plan"),
    ],
)
def test_a_subtask_message_that_is_not_the_approved_plans_runs_nothing_and_is_audited(
    ports: runner.Ports, subtask_id: str, spec: dict[str, Any] | None, why: str
) -> None:
    # Given a run executing its approved plan (one calculation)
    run_id = _executing(ports, [{"id": "s1", "tool": "math.calculate", "args": {"expression": "6*7"}}])
    # When a message names another subtask, or the approved one with another tool, version or arguments
    with pytest.raises(SubtaskRefused, match=why):
        subtask.run(run_id, subtask_id, ports, spec=spec)
    # Then nothing ran, nothing was stored, and the refusal is audited and told to the run's followers
    assert CALLS == [] and ports.store.get_run(run_id).subtasks == ()
    assert [(r["subtask_id"], bool(re.search(why, r["reason"]))) for r in ports.store.refused] == [(subtask_id, True)]  # type: ignore[attr-defined]
    assert ports.events.events[-1][1]["type"] == "subtask_refused"  # type: ignore[attr-defined]
    # And the approved subtask still runs as planned
    assert subtask.run(run_id, "s1", ports).output == {"expression": "6*7", "value": "42"}


def test_a_subtask_message_for_a_run_that_does_not_exist_is_refused_and_audited(ports: runner.Ports) -> None:
    with pytest.raises(SubtaskRefused, match="no such run"):
        subtask.run("no-run", "s1", ports, spec={"id": "s1", "tool": "test.effect", "args": {"n": 1}})

    assert CALLS == [] and ports.store.refused[0]["tool"] == "test.effect"  # type: ignore[attr-defined]
    assert ports.events.events == []  # type: ignore[attr-defined]


def test_a_side_effect_is_called_with_its_idempotency_key(ports: runner.Ports) -> None:
    record = run_inline(
        _start(ports, "effect", subtasks=[{"id": "s1", "tool": "test.effect", "args": {"n": 1}}]), ports
    )

    assert CALLS == ["r1:s1"]
    assert record.subtasks[0].idempotency_key == "r1:s1"


def test_a_transient_error_propagates_so_the_task_can_retry(ports: runner.Ports) -> None:
    run_id = _start(ports, "flaky", subtasks=[{"id": "s1", "tool": "test.flaky", "args": {}}])
    runner.analyze(run_id, ports), runner.gate(run_id, ports), runner.begin_execute(run_id, ports)

    with pytest.raises(ToolTransientError):
        subtask.run(run_id, "s1", ports)


@pytest.mark.parametrize("stage", ["analyze", "gate", "execute", "verify"])
def test_a_local_replay_from_any_stage_is_identical(ports: runner.Ports, stage: str) -> None:
    record = run_inline(_start(ports, "compute 3*3 and summarise: One thing. Another thing. A third."), ports)

    replayed = replay(record, {}, ports, from_stage=stage)

    assert replayed["identical"] is True and replayed["diff"] == []


def test_a_replay_never_repeats_a_side_effect(ports: runner.Ports) -> None:
    record = run_inline(
        _start(ports, "effect", subtasks=[{"id": "s1", "tool": "test.effect", "args": {"n": 1}}]), ports
    )

    replayed = replay(record, {}, ports)

    assert replayed["identical"] is True
    assert CALLS == ["r1:s1"]


def test_a_replay_shows_what_changed(ports: runner.Ports) -> None:
    record = run_inline(_start(ports, "compute 3*3"), ports)
    changed = record.model_copy(update={"output": {**(record.output or {}), "answer": "3*3 = 10"}})

    replayed = replay(changed, {}, ports)

    assert replayed["identical"] is False
    assert replayed["diff"] == ['~ output.answer: "3*3 = 10" -> "3*3 = 9"']

"""Every stage delivered again, early or after a worker died at its worst moment: the run still ends right."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents import runner, subtask
from agents.config import AgentsConfig
from agents.memory import MemoryCache, MemoryEvents, MemoryStore
from agents.models import StageOutput, WorkflowRequest
from agents.profiles import LocalProfile
from agents.replay import run_inline
from agents.tools import default_registry

THREE = "compute 1+1, then compute 2+2, then compute 3+3"


@pytest.fixture
def ports() -> runner.Ports:
    return runner.Ports(store=MemoryStore(), events=MemoryEvents(), registry=default_registry(),
                        profiles=lambda _name: LocalProfile(), cache=MemoryCache(),
                        config=AgentsConfig(stall_after_s=60, max_resumes=2))  # fmt: skip


def _start(ports: runner.Ports, text: str = THREE, run_id: str = "r1", **options: object) -> str:
    ports.store.create_run(run_id, WorkflowRequest(input=text, options=options), "agents")
    return run_id


def _executing(ports: runner.Ports, run_id: str = "r1") -> tuple[str, list[list[str]] | None]:
    """A run planned, approved and executing (its subtasks sent, none run yet): its id and levels."""
    _start(ports, run_id=run_id)
    runner.analyze(run_id, ports)
    runner.gate(run_id, ports)
    return run_id, runner.begin_execute(run_id, ports)[1]


def _later(ports: runner.Ports, seconds: float = 61) -> object:
    return runner.utcnow() + timedelta(seconds=seconds)


def test_an_analyst_that_died_before_storing_its_plan_plans_again_when_delivered_again(ports: runner.Ports) -> None:
    run_id = _start(ports)
    ports.store.transition(run_id, "analyzing", frozenset({"pending"}))  # the first delivery got this far

    report = runner.analyze(run_id, ports)

    assert report["status"] == "analyzing" and "plan" in report["output"]
    assert run_inline(run_id, ports).status == "succeeded"


def test_a_gate_that_arrives_before_the_plan_does_nothing_and_fails_nothing(ports: runner.Ports) -> None:
    run_id = _start(ports)
    ports.store.transition(run_id, "analyzing", frozenset({"pending"}))

    report = runner.gate(run_id, ports)

    assert report == runner.report(run_id, "gate", "analyzing")
    assert ports.store.get_run(run_id).stage("gate") is None
    assert run_inline(run_id, ports).status == "succeeded"


def test_a_gate_that_died_after_storing_its_verdict_applies_it_without_judging_again(ports: runner.Ports) -> None:
    run_id = _start(ports)
    runner.analyze(run_id, ports)
    runner.gate(run_id, ports)
    verdict = ports.store.get_run(run_id).stage("gate")
    ports.store.transition(run_id, "analyzing", frozenset({"gated"}))  # as if the transition never happened

    report = runner.gate(run_id, ports)

    record = ports.store.get_run(run_id)
    assert report["status"] == record.status == "gated"
    assert record.stage("gate") == verdict


def test_an_execute_delivered_again_sends_only_the_subtasks_without_a_result(ports: runner.Ports) -> None:
    run_id, levels = _executing(ports)
    assert levels == [["s1", "s2", "s3"]]
    subtask.run(run_id, "s2", ports)

    _record, again = runner.begin_execute(run_id, ports)

    assert again == [["s1", "s3"]]
    assert [s.stage for s in ports.store.get_run(run_id).stages].count("execute") == 1


def test_an_execute_delivered_again_after_every_result_sends_nothing_and_verify_ends_the_run(
    ports: runner.Ports,
) -> None:
    run_id, levels = _executing(ports)
    for subtask_id in (levels or [[]])[0]:
        subtask.run(run_id, subtask_id, ports)

    assert runner.begin_execute(run_id, ports)[1] is None
    assert runner.verify(run_id, ports).status == "succeeded"


def test_a_verify_sent_before_every_subtask_ran_leaves_the_run_executing(ports: runner.Ports) -> None:
    run_id, _levels = _executing(ports)
    subtask.run(run_id, "s1", ports)

    record = runner.verify(run_id, ports)

    assert (record.status, record.error) == ("executing", None)


def test_a_verify_that_died_mid_check_checks_again_when_delivered_again(ports: runner.Ports) -> None:
    run_id = _start(ports)
    assert run_inline(run_id, ports).status == "succeeded"
    ports.store.transition(run_id, "verifying", frozenset({"succeeded"}))  # as if it died before finishing

    assert runner.verify(run_id, ports).status == "succeeded"


def test_the_sweep_resumes_a_run_with_no_progress_and_leaves_moving_held_and_finished_runs_alone(
    ports: runner.Ports,
) -> None:
    _executing(ports, run_id="stuck")
    held = _start(ports, run_id="held", require_approval=True)
    run_inline(held, ports)
    done = _start(ports, run_id="done")
    run_inline(done, ports)

    assert runner.sweep(ports, runner.utcnow()) == []  # nothing idle for a minute yet
    decisions = runner.sweep(ports, _later(ports))  # type: ignore[arg-type]

    assert [(r.run_id, r.status, action) for r, action in decisions] == [("stuck", "executing", "resume")]
    assert ports.store.resumes("stuck") == 1
    assert ("stuck", {"type": "run_resumed", "status": "executing", "resumes": 1}) in ports.events.events  # type: ignore[attr-defined]


def test_a_run_the_sweep_resumed_max_resumes_times_without_progress_is_failed_with_the_reason(
    ports: runner.Ports,
) -> None:
    run_id = _start(ports)
    ports.store.transition(run_id, "analyzing", frozenset({"pending"}))

    actions = [runner.sweep(ports, _later(ports, 61 * (i + 1)))[0][1] for i in range(3)]  # type: ignore[arg-type]

    record = ports.store.get_run(run_id)
    assert actions == ["resume", "resume", "failed"]
    assert record.status == "failed"
    assert record.error == "stalled in analyzing: no progress for 60 s, after 2 resumes"


def test_a_resumed_stalled_run_completes(ports: runner.Ports) -> None:
    run_id, _levels = _executing(ports)
    subtask.run(run_id, "s1", ports)
    [(record, action)] = runner.sweep(ports, _later(ports))  # type: ignore[arg-type]

    assert (record.status, action) == ("executing", "resume")
    assert run_inline(run_id, ports).status == "succeeded"  # what the resumed execute -> verify does
    assert [s.status for s in ports.store.get_run(run_id).subtasks] == ["succeeded"] * 3


def test_the_stall_must_outlast_a_subtask() -> None:
    with pytest.raises(ValueError, match=r"stall_after_s \(30\) must exceed subtask_time_limit_s \(30\)"):
        AgentsConfig(stall_after_s=30, subtask_time_limit_s=30)


def test_a_stage_record_is_kept_when_execute_is_delivered_again(ports: runner.Ports) -> None:
    run_id, _levels = _executing(ports)
    stage = ports.store.get_run(run_id).stage("execute")

    runner.begin_execute(run_id, ports)

    assert ports.store.get_run(run_id).stage("execute") == stage
    assert isinstance(stage, StageOutput) and stage.output["levels"] == [["s1", "s2", "s3"]]


def test_a_stall_shorter_than_a_subtask_is_refused_naming_the_section() -> None:
    from agents.config import load_config
    from agents.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^FLEET_CONFIG: agents: Value error, stall_after_s \(10\) must exceed"):
        load_config({"stall_after_s": 10, "subtask_time_limit_s": 30})

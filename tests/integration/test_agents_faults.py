"""Agent workflows when things go wrong: failing tools, time limits, cancel, a worker killed mid-execute."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection

from gateway.services import agents as service
from tests.fake_openai import FakeOpenAI
from tests.support import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _config(
    folder: Path,
    queue: str,
    openai_url: str = "http://127.0.0.1:9/v1",
    stall_after_s: int = 600,
    subtask_time_limit_s: int = 2,
) -> dict[str, str]:
    """Environment of a worker serving `queue` with the test tools, fast retries, a 2 s subtask limit, a fake model."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fleet.yaml"
    path.write_text(
        "agents:\n"
        f"  queue: {queue}\n"
        "  tool_modules: [tests.agent_tools]\n"
        "  tool_retries: 2\n"
        "  retry_backoff_s: 0.05\n"
        f"  subtask_time_limit_s: {subtask_time_limit_s}\n"
        f"  stall_after_s: {stall_after_s}\n"
        f"  openai: {{base_url: '{openai_url}', model: fake-1, prompt_price_per_1k: 0.5, completion_price_per_1k: 2.0}}\n"
    )
    return {"FLEET_CONFIG": str(path), "FLEET_TEST_EFFECTS_DIR": str(folder), "FLEET_OPENAI_API_KEY": "test-key"}


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    """A local server speaking the chat-completions API."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def faults_worker(celery_app, database_url: str, session_dir: Path, fake_openai: FakeOpenAI) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    """A worker on its own queue that knows the test tools (two processes, so a slow subtask leaves room)."""
    env = _config(session_dir / "agents-faults", "agents-faults", fake_openai.base_url)
    worker = WorkerProcess(queues="agents-faults", concurrency=2, name="agents-faults", env=env).start(celery_app)
    yield worker
    worker.stop()


def _run(subtasks: list[dict[str, Any]], queue: str = "agents-faults", wait: bool = True) -> dict[str, Any]:
    options = {"queue": queue, "subtasks": subtasks}
    return service.run("test tools", options=options, wait=wait, timeout_s=15)


def test_a_tool_that_keeps_failing_ends_the_run_failed_with_the_error(faults_worker: WorkerProcess) -> None:
    record = _run([{"id": "s1", "tool": "test.flaky", "args": {}}])

    assert record["status"] == "failed"
    assert "s1 (test.flaky:v1): test.flaky: backend unavailable (after 3 attempts)" in record["error"]
    assert record["subtasks"][0]["attempts"] == 3


def test_a_subtask_over_its_time_limit_fails_and_the_run_ends(faults_worker: WorkerProcess) -> None:
    record = _run([{"id": "s1", "tool": "test.sleep", "args": {"ms": 20_000}}])

    assert record["status"] == "failed"
    assert "timed out after 2 s" in record["error"]


def test_a_subtask_whose_dependency_failed_is_skipped_with_the_reason(faults_worker: WorkerProcess) -> None:
    record = _run([
        {"id": "s1", "tool": "math.calculate", "args": {"expression": "1/0"}},
        {"id": "s2", "tool": "text.summarize", "args": {}, "depends_on": ["s1"]},
    ])  # fmt: skip

    assert record["status"] == "failed"
    assert record["subtasks"][1]["status"] == "skipped"
    assert record["subtasks"][1]["error"] == "dependency s1 did not succeed"


def test_cancel_stops_the_run_keeps_partial_results_and_no_later_stage_starts(
    faults_worker: WorkerProcess, celery_app
) -> None:  # type: ignore[no-untyped-def]
    started = _run([
        {"id": "s1", "tool": "math.calculate", "args": {"expression": "6*7"}},
        {"id": "s2", "tool": "test.sleep", "args": {"ms": 8_000}},  # long enough to be running when cancelled
    ], wait=False)  # fmt: skip
    run_id = started["run_id"]
    for _id, event in service.progress(run_id, timeout_s=30):
        if event.get("subtask_id") == "s1":
            break

    cancelled = service.cancel(run_id, actor="tester")
    final = celery_app.AsyncResult(run_id)
    wait_for(final.ready, timeout=30, what="the producer's id to resolve")
    inspect = celery_app.control.inspect(destination=[faults_worker.hostname], timeout=2)
    wait_for(
        lambda: (inspect.active() or {}).get(faults_worker.hostname) == [], timeout=30, what="the worker to be idle"
    )

    record = service.run_status(run_id)
    assert final.state == "REVOKED"
    assert cancelled["status"] == record["status"] == "cancelled"
    assert record["error"] == "cancelled by tester"
    assert record["subtasks"][0]["output"] == {"expression": "6*7", "value": "42"}
    assert "verify" not in [s["stage"] for s in record["stages"]]


def test_the_openai_profile_plans_through_the_fake_model_and_records_tokens_and_cost(
    faults_worker: WorkerProcess, fake_openai: FakeOpenAI
) -> None:
    record = service.run("compute 42*2", profile="openai", options={"queue": "agents-faults"}, timeout_s=15)

    assert record["status"] == "succeeded", record["error"]
    assert record["output"]["results"]["s1"]["value"] == "84"
    usage = record["stages"][0]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["cost"]) == (120, 30, 0.12)
    assert fake_openai.requests[-1][0]["Authorization"] == "Bearer test-key"


def test_an_openai_plan_that_is_not_json_fails_the_run_at_the_analyst(faults_worker: WorkerProcess) -> None:
    record = service.run("broken 1+1", profile="openai", options={"queue": "agents-faults"}, timeout_s=15)

    assert record["status"] == "failed"
    assert "analyze: the model's plan is not valid JSON" in record["error"]


def _restore_unacknowledged(celery_app) -> int:  # type: ignore[no-untyped-def]
    """Hand back what a dead worker held, as the broker does once the visibility timeout passes (here: 1 s)."""
    options = {**celery_app.conf.broker_transport_options, "visibility_timeout": 1}
    with Connection(celery_app.conf.broker_url, transport_options=options) as connection:
        connection.default_channel.qos.restore_visible(num=100)
    return int(redis.Redis.from_url(celery_app.conf.broker_url).hlen("unacked"))


def _kill_during_the_first_effect(  # type: ignore[no-untyped-def]
    celery_app, folder: Path, queue: str, **config: Any
) -> tuple[Path, dict[str, str], str]:
    """A run of three slow side effects on a worker of its own, SIGKILLed during the first: folder, env, run id."""
    config.setdefault("subtask_time_limit_s", 6)  # an effect holds 1.5 s: a loaded machine must not time it out
    env = _config(folder, queue, **config)
    os.environ["FLEET_TEST_EFFECTS_DIR"] = str(folder)
    victim = WorkerProcess(queues=queue, concurrency=1, name=f"{queue}-victim", env=env).start(celery_app)
    subtasks = [{"id": f"e{i}", "tool": "test.effect", "args": {"hold_ms": 1_500}} for i in range(3)]
    run_id = _run(subtasks, queue=queue, wait=False)["run_id"]
    calls = folder / "calls.log"
    wait_for(lambda: calls.exists() and calls.read_text().strip(), timeout=30, what="the first side effect")
    victim.kill()
    return folder, env, run_id


@pytest.mark.slow
def test_a_worker_killed_during_execute_the_run_still_finishes_and_each_effect_happens_once(
    celery_app,
    database_url: str,
    session_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    folder, env, run_id = _kill_during_the_first_effect(celery_app, session_dir / "agents-kill", "agents-kill")
    calls = folder / "calls.log"
    wait_for(
        lambda: _restore_unacknowledged(celery_app) == 0,
        timeout=30,
        what="the dead worker's messages back in the queue",
    )
    rescuer = WorkerProcess(queues="agents-kill", concurrency=1, name="agents-rescuer", env=env).start(celery_app)
    try:
        record = service.wait_for_run(run_id, timeout_s=15)
    finally:
        rescuer.stop()

    assert record["status"] == "succeeded", record["error"]
    effects = (folder / "effects.log").read_text().split()
    assert sorted(effects) == sorted(f"{run_id}:e{i}" for i in range(3))
    killed = calls.read_text().split()[0]
    assert calls.read_text().split().count(killed) == 2  # called again after the kill, applied once
    assert {r["subtask_id"]: r["attempts"] for r in record["subtasks"]}[killed.split(":")[1]] == 2


def _lose_unacknowledged(celery_app, queue: str) -> int:  # type: ignore[no-untyped-def]
    """Drop what a dead worker held for `queue` from the broker: the message is lost, as in kombu's BRPOP window."""
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    lost = [tag for tag, raw in client.hgetall("unacked").items() if json.loads(raw)[2] == queue]
    if lost:
        client.hdel("unacked", *lost)
        client.zrem("unacked_index", *lost)
    return len(lost)


@pytest.mark.slow
def test_a_run_whose_subtask_message_was_lost_with_its_worker_is_resumed_by_the_sweep_and_finishes(
    celery_app,
    database_url: str,
    session_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    folder, env, run_id = _kill_during_the_first_effect(
        celery_app, session_dir / "agents-lost", "agents-lost", stall_after_s=8
    )
    assert _lose_unacknowledged(celery_app, "agents-lost") == 1

    rescuer = WorkerProcess(queues="agents-lost", concurrency=1, name="agents-lost-rescuer", env=env).start(celery_app)
    try:
        wait_for(lambda: len(service.run_status(run_id)["subtasks"]) == 2, timeout=30, what="the two other subtasks")
        assert service.run_status(run_id)["status"] == "executing"  # stuck: the lost one's chord never completes

        def swept() -> bool:
            celery_app.send_task("agents.sweep", queue="agents-lost", priority=1)  # what beat sends every minute
            return service.run_status(run_id)["status"] not in ("executing", "verifying")

        wait_for(swept, timeout=60, interval=1.0, what="the sweep to resume the run and the run to end")
        final = celery_app.AsyncResult(run_id).get(timeout=15)
    finally:
        rescuer.stop()

    record = service.run_status(run_id)
    assert record["status"] == final["status"] == "succeeded", record["error"]
    effects = (folder / "effects.log").read_text().split()
    assert sorted(effects) == sorted(f"{run_id}:e{i}" for i in range(3))  # each applied once
    assert any(e["type"] == "run_resumed" for _id, e in service.progress(run_id, timeout_s=1))


@pytest.mark.slow
def test_a_run_is_recorded_before_its_message_is_sent_and_the_sweep_starts_it_when_the_message_is_lost(
    celery_app,
    database_url: str,
    session_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Given a run submitted while no worker serves its queue: it exists at once, pending
    queue = "agents-unsent"
    env = _config(session_dir / queue, queue, stall_after_s=3)
    run_id = _run([{"id": "s1", "tool": "math.calculate", "args": {"expression": "6*7"}}], queue=queue, wait=False)[
        "run_id"
    ]
    assert service.run_status(run_id)["status"] == "pending"
    # When its only message is lost before any worker took it
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    assert client.delete(queue, *(f"{queue}:{p}" for p in range(1, 10))) == 1
    rescuer = WorkerProcess(queues=queue, concurrency=1, name=f"{queue}-worker", env=env).start(celery_app)
    try:

        def swept() -> bool:
            celery_app.send_task("agents.sweep", queue=queue, priority=1)  # what beat sends every minute
            return service.run_status(run_id)["status"] != "pending"

        wait_for(swept, timeout=60, interval=1.0, what="the sweep to start the pending run")
        record = service.wait_for_run(run_id, timeout_s=30)
    finally:
        rescuer.stop()
    # Then the sweep started it, and it ran to the end
    assert record["status"] == "succeeded", record["error"]
    assert record["output"]["results"]["s1"]["value"] == "42"
    assert any(e["type"] == "run_resumed" for _id, e in service.progress(run_id, timeout_s=1))

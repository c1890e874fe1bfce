"""The fleet's result backend on a real Redis: SUCCESS and REVOKED are final, a cancel's REVOKED is forced."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from celery import states
from celery.app.task import Context

from tests.support import wait_for
from worker.backend import EXTENDED_ARGS_MAX_BYTES, EXTENDED_REPR_MAX, FleetRedisBackend, backend_url, larger_than

pytestmark = pytest.mark.integration


@pytest.fixture
def backend(celery_app):  # type: ignore[no-untyped-def]
    assert isinstance(celery_app.backend, FleetRedisBackend)
    return celery_app.backend


def test_the_fleet_app_uses_the_fleet_backend_only_for_redis_urls() -> None:
    assert backend_url("redis://127.0.0.1:6379/1") == "worker.backend:FleetRedisBackend+redis://127.0.0.1:6379/1"
    assert backend_url("rediss://h:6380/0").startswith("worker.backend:FleetRedisBackend+rediss://")
    assert backend_url("db+sqlite:///results.db") == "db+sqlite:///results.db"


def test_a_failure_written_after_a_success_is_ignored(backend, celery_app) -> None:  # type: ignore[no-untyped-def]
    task_id = str(uuid.uuid4())
    backend.mark_as_done(task_id, {"answer": 42})
    backend.mark_as_failure(task_id, RuntimeError("a late duplicate failed"))

    result = celery_app.AsyncResult(task_id)
    assert (result.state, result.result) == (states.SUCCESS, {"answer": 42})


def test_a_revoked_task_stays_revoked_whatever_is_written_later(backend, celery_app) -> None:  # type: ignore[no-untyped-def]
    task_id = str(uuid.uuid4())
    backend.mark_as_started(task_id)
    backend.revoke_result(task_id, reason="run cancelled by tester")
    backend.mark_as_done(task_id, {"status": "cancelled"})
    backend.mark_as_failure(task_id, RuntimeError("ChordError: a member was terminated"))

    result = celery_app.AsyncResult(task_id)
    assert result.state == states.REVOKED
    assert "run cancelled by tester" in str(result.result)


def test_a_cancel_overrides_a_success_written_just_before_it(backend, celery_app) -> None:  # type: ignore[no-untyped-def]
    task_id = str(uuid.uuid4())
    backend.mark_as_done(task_id, {"status": "cancelled"})
    backend.revoke_result(task_id, reason="run cancelled by tester")

    assert celery_app.AsyncResult(task_id).state == states.REVOKED


def test_intermediate_states_are_overwritten_and_a_waiting_reader_gets_the_result(
    backend, celery_app, fleet_worker
) -> None:  # type: ignore[no-untyped-def]
    task_id = str(uuid.uuid4())
    backend.mark_as_started(task_id)
    backend.mark_as_retry(task_id, RuntimeError("transient"))
    assert celery_app.AsyncResult(task_id).state == states.RETRY

    result = celery_app.send_task("fleet.ping", queue="agents")
    assert result.get(timeout=30)  # the pub/sub notification reaches a reader waiting with get()
    wait_for(lambda: result.state == states.SUCCESS, what="the ping's SUCCESS")
    backend.mark_as_done(task_id, "done")
    assert celery_app.AsyncResult(task_id).get(timeout=5) == "done"


def _request(args: Any, argsrepr: str | None) -> Context:
    return Context(task="ledger.quick_run_batch", args=args, kwargs={}, argsrepr=argsrepr, hostname="w@h", retries=0)


def test_an_extended_result_keeps_small_arguments(backend, celery_app) -> None:  # type: ignore[no-untyped-def]
    task_id = str(uuid.uuid4())
    backend.mark_as_done(task_id, {"count": 1}, request=_request([[{"event_id": "e-1"}]], "[<batch>]"))

    result = celery_app.AsyncResult(task_id)
    assert (result.args, result.kwargs, result.name) == ([[{"event_id": "e-1"}]], {}, "ledger.quick_run_batch")


def test_an_extended_result_stores_large_arguments_as_their_repr(backend, celery_app) -> None:  # type: ignore[no-untyped-def]
    events = [{"event_id": f"e-{i}", "data": {"account": f"acc-{i}" * 20}} for i in range(2000)]
    assert len(json.dumps(events)) > EXTENDED_ARGS_MAX_BYTES
    with_repr, without_repr = str(uuid.uuid4()), str(uuid.uuid4())
    backend.mark_as_done(with_repr, {"count": 2000}, request=_request([events], "[<batch>]"))
    backend.mark_as_done(without_repr, {"count": 2000}, request=_request([events], None))

    assert celery_app.AsyncResult(with_repr).args == "[<batch>]"
    summary = celery_app.AsyncResult(without_repr).args
    assert isinstance(summary, str) and summary.startswith("[[{") and len(summary) <= EXTENDED_REPR_MAX
    assert celery_app.AsyncResult(with_repr).result == {"count": 2000}


def test_a_worker_stores_a_large_batch_result_without_its_events(celery_app, fleet_worker) -> None:  # type: ignore[no-untyped-def]
    from ledger.generate import generate

    events = [item["event"] for item in generate(1000, 0, seed=7, prefix=f"rb-{uuid.uuid4().hex[:6]}")]
    assert larger_than([events], EXTENDED_ARGS_MAX_BYTES)
    sent = celery_app.send_task("ledger.quick_run_batch", args=[events], queue="ledger", argsrepr="[<batch>]")

    assert sent.get(timeout=60)["count"] == 1000
    assert sent.args == "[<batch>]"
    assert sent.name == "ledger.quick_run_batch"


@pytest.mark.parametrize(
    "value", [[], "x" * 100, {"a": [1, 2, {"b": "c" * 50}]}, [{"k": "v" * 30}] * 40, list(range(500)), None, 12]
)
def test_larger_than_agrees_with_the_json_length_around_the_limit(value: Any) -> None:
    # Given a value and the length of its compact JSON; then the estimate is within a factor of two of it
    size = len(json.dumps(value, separators=(",", ":")))
    assert not larger_than(value, size * 2 + 16)
    assert larger_than(value, size // 2) or size < 16


@pytest.mark.parametrize("value", [[0] * 32_000, [True] * 12_000, [{"a": 0}] * 8_100, ["a"] * 16_000])
def test_a_single_event_at_the_payload_limit_keeps_its_arguments(value: Any) -> None:
    # Given an event of about 64 KiB (the ledger's default payload_limit_bytes) made of the smallest JSON items
    event = {"event_id": "e", "event_type": "config_changed", "data": {"key": "k", "value": value}}
    assert 60_000 < len(json.dumps(event, separators=(",", ":"))) <= 65_536
    # Then its arguments are under the limit of what an extended result stores
    assert not larger_than([event], EXTENDED_ARGS_MAX_BYTES)

"""The fleet's result backend on a real Redis: SUCCESS and REVOKED are final, a cancel's REVOKED is forced."""

from __future__ import annotations

import uuid

import pytest
from celery import states

from tests.support import wait_for
from worker.backend import FleetRedisBackend, backend_url

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

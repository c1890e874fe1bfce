"""Poison messages: each is refused with a recorded reason, and the worker keeps consuming."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kombu import Exchange, Producer
from sqlalchemy import select

from tests.support import WorkerProcess, wait_for
from worker.db import session_scope
from worker.models.core import DeadLetter

pytestmark = pytest.mark.integration


def _publish(
    app: Any, body: Any, headers: dict[str, Any], serializer: str | None = None, content_type: str | None = None
) -> None:
    with app.connection_for_write() as connection:
        producer = Producer(connection, exchange=Exchange("ledger", type="direct"), routing_key="ledger")
        producer.publish(
            body,
            serializer=serializer,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
            priority=5,
            declare=[],
        )


def _dead_letter(task_id: str) -> DeadLetter | None:
    with session_scope() as session:
        return session.scalars(select(DeadLetter).where(DeadLetter.task_id == task_id)).first()


def _headers(task: str = "fleet.ping") -> dict[str, Any]:
    return {"task": task, "id": str(uuid.uuid4()), "lang": "py", "argsrepr": "", "kwargsrepr": ""}


@pytest.mark.parametrize(
    ("reason", "body", "serializer", "content_type"),
    [
        ("content_refused", ((), {}, {}), "pickle", None),
        ("not_json", "{this is not json", None, "application/json"),
        ("too_deep", "[" * 10_000 + "]" * 10_000, None, "application/json"),
    ],
    ids=["pickle", "not-json", "nested-10000-deep"],
)
def test_an_undecodable_message_is_recorded_with_its_reason(
    fleet_worker: WorkerProcess,
    celery_app: Any,
    reason: str,
    body: Any,
    serializer: str | None,
    content_type: str | None,
) -> None:
    headers = _headers()
    _publish(celery_app, body, headers, serializer=serializer, content_type=content_type)
    letter = wait_for(lambda: _dead_letter(headers["id"]), 20, what=f"a dead letter for {reason}")
    assert letter.reason == reason
    assert letter.task_name == "fleet.ping"
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=20)["queue"] == "ledger"


def test_an_unknown_task_name_is_recorded_and_the_worker_keeps_serving(
    fleet_worker: WorkerProcess, celery_app: Any
) -> None:
    result = celery_app.send_task("no.such.task", queue="ledger", priority=5)
    letter = wait_for(lambda: _dead_letter(result.id), 20, what="a dead letter for the unknown task")
    assert letter.reason == "unknown_task"
    assert "no.such.task" in letter.detail
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=20)["queue"] == "ledger"


def test_wrong_arguments_are_recorded_as_bad_arguments(fleet_worker: WorkerProcess, celery_app: Any) -> None:
    result = celery_app.send_task("fleet.ping", args=[1, {"x": 2}], queue="ledger", priority=5)
    letter = wait_for(lambda: _dead_letter(result.id), 20, what="a dead letter for wrong arguments")
    assert letter.reason == "bad_arguments"
    assert json.dumps(letter.detail)  # readable text
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=20)["queue"] == "ledger"

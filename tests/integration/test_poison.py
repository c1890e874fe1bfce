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


def _pushed(app: Any, headers: dict[str, Any], body: Any = None) -> str:
    """A fleet envelope with these headers and body LPUSHed onto ledger's priority-5 list; the marker in its body."""
    import redis

    from tests.junk import encode, envelope

    marker = f"marker-{uuid.uuid4().hex}"
    body = [[marker], {}, {}] if body is None else json.loads(json.dumps(body).replace("MARKER", marker))
    value = envelope(queue="ledger", body=json.dumps(body).encode())
    value["headers"] = headers
    redis.Redis.from_url(app.conf.broker_url).lpush("ledger:5", encode(value))
    return marker


def _dead_letter_holding(marker: str) -> DeadLetter | None:
    with session_scope() as session:
        return session.scalars(select(DeadLetter).where(DeadLetter.body_excerpt.contains(marker))).first()


PING = {"lang": "py", "task": "fleet.ping", "id": "set-per-test"}


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"lang": "py", "task": ["fleet.ping"], "id": "x"}, None),
        ({"lang": "py", "task": {"name": "fleet.ping"}, "id": "x"}, None),
        ({"lang": "py", "task": "fleet.ping"}, None),
        ({"lang": "py", "task": "no.such.task"}, None),
        ({"lang": "py", "id": "v1"}, {"task": "fleet.ping", "id": "v1", "args": ["MARKER"]}),
        ({**PING, "eta": 5}, None),
        ({**PING, "expires": [1]}, None),
        ({**PING, "timelimit": [1, 2, 3]}, None),
        ({**PING, "timelimit": ["soon", None]}, None),
        ({**PING, "retries": "many"}, None),
        ({**PING, "x_correlation_id": {"a": 1}}, None),
        (PING, {"args": "MARKER"}),
        (PING, ["MARKER", {}]),
        (PING, [["MARKER"], [], {}]),
        (PING, [["MARKER"], {}, {"callbacks": 5}]),
    ],
    ids=[
        "task-list",
        "task-object",
        "no-id",
        "unknown-task-without-id",
        "protocol-1",
        "eta-number",
        "expires-list",
        "timelimit-three",
        "timelimit-text",
        "retries-text",
        "correlation-object",
        "body-object",
        "body-two-items",
        "kwargs-list",
        "callbacks-number",
    ],
)
def test_an_envelope_whose_task_celery_cannot_read_is_refused_and_the_worker_keeps_serving(
    fleet_worker: WorkerProcess, celery_app: Any, headers: dict[str, Any], body: Any
) -> None:
    # Given the session's worker, and a well-formed envelope whose task headers or body are not protocol 2
    assert fleet_worker.process is not None
    pid = fleet_worker.process.pid
    # When it is pushed onto the ledger queue's priority-5 list
    marker = _pushed(celery_app, {**headers, "id": str(uuid.uuid4())} if "id" in headers else headers, body)
    # Then it is a dead letter, and the same worker process answers the next ping
    letter = wait_for(lambda: _dead_letter_holding(marker), 20, what="a dead letter for the malformed task")
    assert letter.reason == "invalid_message", letter.detail
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=20)["queue"] == "ledger"
    assert fleet_worker.process.pid == pid and fleet_worker.process.poll() is None


def test_generated_task_messages_celery_cannot_read_are_each_a_dead_letter_and_the_worker_stays(
    fleet_worker: WorkerProcess, celery_app: Any
) -> None:
    import redis

    from tests.junk import broken_tasks, generated

    # Given the session's worker, and task messages with a header of the wrong type or a body of the wrong shape
    assert fleet_worker.process is not None
    pid = fleet_worker.process.pid
    marker = f"generated-{uuid.uuid4().hex}"
    messages = generated(broken_tasks(marker), 60)
    # When they are pushed onto the ledger queue's lists
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    for index, raw in enumerate(messages):
        client.lpush("ledger" if index % 10 == 0 else f"ledger:{index % 10}", raw)

    # Then each is one dead letter `invalid_message`, and the same worker process answers the next ping
    def kept() -> list[str]:
        with session_scope() as session:
            return list(session.scalars(select(DeadLetter.reason).where(DeadLetter.body_excerpt.contains(marker))))

    reasons = wait_for(lambda: (found := kept()) and len(found) >= len(messages) and found, 60, 0.2)
    assert reasons == ["invalid_message"] * len(messages)
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=20)["queue"] == "ledger"
    assert fleet_worker.process.pid == pid and fleet_worker.process.poll() is None


def test_a_task_name_that_is_no_text_is_recorded_escaped_and_the_worker_keeps_serving(
    fleet_worker: WorkerProcess, celery_app: Any
) -> None:
    # Given a task message whose name holds a lone surrogate and NUL (strings, so Celery reads them as a name)
    assert fleet_worker.process is not None
    pid = fleet_worker.process.pid
    task_id = str(uuid.uuid4())
    marker = _pushed(celery_app, {"lang": "py", "task": "no.such\ud800\x00task", "id": task_id})
    # Then it is an unknown task, recorded with its name escaped, and the same worker answers the next ping
    letter = wait_for(lambda: _dead_letter_holding(marker), 20, what="a dead letter for the unknown task")
    assert (letter.reason, letter.task_name) == ("unknown_task", "no.such\\ud800\\x00task")
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=20)["queue"] == "ledger"
    assert fleet_worker.process.pid == pid and fleet_worker.process.poll() is None

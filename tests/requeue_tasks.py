"""A task only some test workers know (`celery worker -I tests.requeue_tasks`): a message for it sent to a worker
without it is a dead letter, which a worker with it runs once requeued (a deploy that adds a task)."""

from __future__ import annotations

from worker.application import app


@app.task(name="tests.greet", ignore_result=False)
def greet(name: str, password: str = "") -> str:
    """A greeting; `password` only shows that a dead letter's secrets are masked."""
    return f"hello {name}"

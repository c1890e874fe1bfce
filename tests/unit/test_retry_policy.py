"""Every ledger and agent task retries a database outage with bounded exponential backoff."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

import agents.tasks  # noqa: F401  (registers the tasks)
import ledger.tasks  # noqa: F401
from worker.application import app

TASKS = [
    "ledger.quick_run",
    "ledger.quick_run_batch",
    "agents.run_workflow",
    "agents.analyze",
    "agents.gate",
    "agents.execute",
    "agents.run_subtask",
    "agents.verify",
]


@pytest.mark.parametrize("name", TASKS)
def test_a_task_retries_a_database_outage_with_bounded_backoff(name: str) -> None:
    task = app.tasks[name]

    assert OperationalError in task.autoretry_for
    assert task.retry_backoff
    bound = getattr(task, "retry_kwargs", {}).get("max_retries", task.max_retries)
    assert bound is not None and 0 < bound <= 10

"""Every ledger, agent and report task retries a database outage with bounded exponential backoff."""

from __future__ import annotations

import pytest
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.exc import OperationalError

import worker.agents.tasks
import worker.ledger.tasks
import worker.reports.tasks  # noqa: F401
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
    "reports.daily_status",
]


@pytest.mark.parametrize("name", TASKS)
def test_a_task_retries_a_database_outage_with_bounded_backoff(name: str) -> None:
    task = app.tasks[name]

    assert OperationalError in task.autoretry_for
    assert task.retry_backoff
    bound = getattr(task, "retry_kwargs", {}).get("max_retries", task.max_retries)
    assert bound is not None and 0 < bound <= 10


def test_the_daily_report_outlasts_a_database_outage_of_several_minutes() -> None:
    # Given the report task's retry policy (it was three retries, each waiting a random 0-10, 0-20, 0-40 s: the
    # draws could sum to less than a 10 s outage and fail the day's report)
    task = app.tasks["reports.daily_status"]
    jitter = getattr(task, "retry_jitter", True)  # Celery's defaults for autoretry_for
    ceiling = getattr(task, "retry_backoff_max", 600)

    # When every retry meets the database still away
    waits = [get_exponential_backoff_interval(task.retry_backoff, n, ceiling, jitter) for n in range(task.max_retries)]

    # Then it keeps trying for minutes, however the draws fall
    assert jitter is False
    assert sum(waits) >= 300

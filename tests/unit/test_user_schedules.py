"""What a valid user schedule is: any text a caller sends is accepted or refused with a reason, never a crash."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from beat.errors import ScheduleInvalid
from beat.user_schedules import ScheduleSpec, check_target, cron_fields
from tests.support import ROOT
from worker.constants import QUEUES, TASK_NAMES
from worker.reports.schedules import as_crontab

CRON_CHARS = st.sampled_from([*"0123456789*/,-", "mon", "jan", "L", "?", "#", "99", "60", "-1"])
CRON_FIELD = st.lists(CRON_CHARS, min_size=1, max_size=6).map("".join)


def test_an_hourly_cron_expression_becomes_celerys_crontab_fields() -> None:
    assert cron_fields("0 * * * *") == {
        "minute": "0",
        "hour": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "day_of_week": "*",
    }
    assert as_crontab("*/15 9-17 * * mon-fri").hour == set(range(9, 18))


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 * * *", "needs 5 fields"),
        ("99 * * * *", "Invalid end range"),
        ("*/0 * * * *", "step cannot be zero"),
        ("0 0 31 2 *", "never occurs"),
        ("0 0 * * *;rm", "not valid"),
    ],
)
def test_a_cron_expression_that_cannot_run_is_refused_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleInvalid, match=reason):
        as_crontab(expression)


@settings(max_examples=300, deadline=None)
@given(st.lists(CRON_FIELD, min_size=0, max_size=7).map(" ".join))
def test_any_generated_cron_expression_is_a_crontab_or_a_schedule_invalid(expression: str) -> None:
    try:
        schedule = as_crontab(expression)
    except ScheduleInvalid as exc:
        assert expression[:20] in str(exc) or "needs 5 fields" in str(exc)
    else:
        assert schedule.minute and schedule.hour


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_any_text_as_name_or_cron_is_accepted_or_refused_by_validation(name: str, cron: str) -> None:
    try:
        spec = ScheduleSpec(name=name, task="fleet.ping", cron=cron)
    except ValidationError as exc:
        assert {error["loc"][0] for error in exc.errors()} <= {"name", "cron"}
    else:
        assert len(spec.name) <= 64 and len(spec.cron.split()) == 5


def test_an_unknown_task_or_queue_is_refused_naming_what_is_known() -> None:
    with pytest.raises(ScheduleInvalid, match=r"unknown task .ledger\.check.*fleet\.ping"):
        check_target(ScheduleSpec(name="x", task="ledger.check", cron="0 * * * *"), TASK_NAMES, QUEUES)
    with pytest.raises(ScheduleInvalid, match="unknown queue 'fleet:ratelimit:k'"):
        check_target(
            ScheduleSpec(name="x", task="fleet.ping", cron="0 * * * *", queue="fleet:ratelimit:k"), TASK_NAMES, QUEUES
        )


def test_the_task_names_a_schedule_may_send_are_exactly_those_the_worker_registers() -> None:
    # A fresh process: other tests register tasks of their own on the app.
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from worker import app; app.loader.import_default_modules(); "
            "print('\\n'.join(sorted(n for n in app.tasks if not n.startswith('celery.'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert listed.stdout.split() == sorted(TASK_NAMES)


def test_redbeat_still_has_what_the_fleet_scheduler_builds_on() -> None:
    # worker/beat_scheduler.py subclasses RedBeat's scheduler and uses these; a release that changes them fails here.
    import inspect

    from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, acquire_distributed_beat_lock

    assert list(inspect.signature(RedBeatSchedulerEntry.__init__).parameters)[:8] == [
        "self",
        "name",
        "task",
        "schedule",
        "args",
        "kwargs",
        "enabled",
        "options",
    ]
    for method in ("from_key", "save", "delete", "reschedule", "generate_key", "is_due"):
        assert callable(getattr(RedBeatSchedulerEntry, method)), method
    assert "tick" in vars(RedBeatScheduler) and isinstance(vars(RedBeatScheduler)["schedule"], property)
    assert callable(acquire_distributed_beat_lock)

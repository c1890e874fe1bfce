"""Beat reads user schedules from SQL on every loop: added, paused, resumed and removed without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from beat.user_schedules import ScheduleSpec
from gateway.services import schedules as service
from worker.beat_scheduler import USER_ENTRIES_KEY, FleetScheduler
from worker.redis_client import get_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def scheduler(celery_app, database_url: str) -> Iterator[FleetScheduler]:  # type: ignore[no-untyped-def]
    for stored in service.list_all()["schedules"]:
        service.remove(stored["name"])
    yield FleetScheduler(app=celery_app, lazy=True)
    for stored in service.list_all()["schedules"]:
        service.remove(stored["name"])


def _entry(name: str) -> dict[str, str]:
    raw = get_redis().hgetall(f"fleet:beat:user:{name}")
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()
    }


def test_a_schedule_added_while_beat_runs_is_installed_for_its_next_cron_time_not_at_once(
    scheduler: FleetScheduler,
) -> None:
    # Given a running scheduler with no user schedule
    scheduler.sync_user_schedules()
    assert get_redis().smembers(USER_ENTRIES_KEY) == set()
    # When an operator adds an hourly ping at minute 0
    service.add(ScheduleSpec(name="hourly-ping", task="fleet.ping", cron="0 * * * *", queue="ledger", priority=2))
    scheduler.sync_user_schedules()
    # Then beat holds it, due at the next full hour (a new entry does not fire on the spot)
    assert '"task": "fleet.ping"' in _entry("hourly-ping")["definition"]
    due = get_redis().zscore("fleet:beat::schedule", "fleet:beat:user:hourly-ping")
    assert due is not None
    full_hour = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    assert abs(datetime.fromtimestamp(due, UTC) - full_hour) <= timedelta(seconds=2)


def test_pause_resume_and_remove_reach_beat_on_its_next_loop(scheduler: FleetScheduler) -> None:
    # Given an installed schedule
    service.add(ScheduleSpec(name="nightly", task="reports.collect_metrics", cron="30 3 * * *"))
    scheduler.sync_user_schedules()
    assert _entry("nightly")
    # When it is paused, then Beat drops it (the stored schedule is kept)
    service.pause("nightly", True)
    scheduler.sync_user_schedules()
    assert _entry("nightly") == {}
    assert [s["enabled"] for s in service.list_all()["schedules"]] == [False]
    # When it is resumed, then Beat holds it again
    service.pause("nightly", False)
    scheduler.sync_user_schedules()
    assert _entry("nightly")
    # When it is removed, then it is gone from Beat and from SQL
    service.remove("nightly")
    scheduler.sync_user_schedules()
    assert _entry("nightly") == {} and service.list_all()["schedules"] == []


def test_an_every_minute_schedule_is_sent_by_beat_once_per_minute(scheduler: FleetScheduler) -> None:
    # Given an every-minute schedule installed with its last run a minute ago
    service.add(ScheduleSpec(name="minutely", task="fleet.ping", cron="* * * * *", queue="reports", priority=9))
    scheduler.sync_user_schedules()
    entry = scheduler.Entry.from_key("fleet:beat:user:minutely", app=scheduler.app)
    assert entry.task == "fleet.ping" and entry.options == {"queue": "reports", "priority": 9}
    entry.reschedule(datetime.fromtimestamp(time.time() - 120, UTC))
    # When Beat checks it, then it is due now and, once sent, not again before the next minute
    due, _next = entry.is_due()
    assert due
    sent = next(entry)
    assert sent.is_due()[0] is False

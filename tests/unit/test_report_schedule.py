"""The Beat schedule is a pure function of settings: collect every minute, report at 10:00, pause offline."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab

from beat.config import reports_config
from beat.errors import ReportConfigError
from beat.schedule import (
    build_schedule,
    in_offline_window,
    is_late,
    missed_report_due,
    online_hours,
    report_period,
)

SEOUL = ZoneInfo("Asia/Seoul")


def test_the_default_schedule_collects_outside_02_to_07_and_reports_at_10() -> None:
    schedule = build_schedule({}, "Asia/Seoul")
    assert schedule["collect-metrics"]["cron"] == {"minute": "*", "hour": "0-1,7-23"}
    assert schedule["daily-status-report"]["cron"] == {"minute": "0", "hour": "10"}
    assert schedule["daily-status-report"]["task"] == "reports.daily_status"
    assert schedule["collect-metrics"]["options"]["queue"] == "reports"
    assert {entry["timezone"] for entry in schedule.values()} == {"Asia/Seoul"}


@pytest.mark.parametrize(
    ("window", "at", "offline"),
    [
        ("02:00-07:00", time(1, 59), False),
        ("02:00-07:00", time(2, 0), True),
        ("02:00-07:00", time(6, 59), True),
        ("02:00-07:00", time(7, 0), False),
        ("22:30-01:00", time(23, 0), True),
        ("22:30-01:00", time(0, 30), True),
        ("22:30-01:00", time(22, 29), False),
    ],
)
def test_the_offline_window_covers_start_to_end_even_across_midnight(window: str, at: time, offline: bool) -> None:
    assert in_offline_window(at, reports_config({"offline_window": window}).window) is offline


def test_a_window_with_minutes_keeps_its_partial_hours_in_the_crontab() -> None:
    assert online_hours(reports_config({"offline_window": "02:30-07:00"}).window) == "0-2,7-23"
    assert online_hours(None) == "*"


def test_no_offline_window_collects_all_day() -> None:
    assert build_schedule({"offline_window": None}, "UTC")["collect-metrics"]["cron"]["hour"] == "*"


def test_a_report_time_inside_the_window_moves_to_its_end() -> None:
    schedule = build_schedule({"report_time": "03:00"}, "UTC")
    assert schedule["daily-status-report"]["cron"] == {"minute": "0", "hour": "7"}


def test_the_report_entry_is_due_at_10_in_the_fleet_time_zone_not_before() -> None:
    # Given an app in the fleet's time zone, as celeryconfig sets it from FLEET_TIMEZONE
    app = Celery("schedule-test", set_as_current=False)
    app.conf.timezone = "Asia/Seoul"
    cron = build_schedule({}, "Asia/Seoul")["daily-status-report"]["cron"]
    last_run = datetime(2026, 11, 21, 9, 58, tzinfo=SEOUL)
    at_0959 = crontab(**cron, app=app, nowfun=lambda: datetime(2026, 11, 21, 9, 59, 30, tzinfo=SEOUL))
    at_1000 = crontab(**cron, app=app, nowfun=lambda: datetime(2026, 11, 21, 10, 0, 1, tzinfo=SEOUL))
    assert at_0959.is_due(last_run).is_due is False
    assert at_1000.is_due(last_run).is_due is True


@pytest.mark.parametrize(
    ("now", "late"), [(time(10, 0), False), (time(10, 15), False), (time(10, 16), True), (time(18, 0), True)]
)
def test_a_report_made_past_the_grace_period_is_late(now: time, late: bool) -> None:
    config = reports_config({})
    assert is_late(datetime.combine(date(2026, 11, 21), now, tzinfo=SEOUL), config) is late


def test_a_missed_report_is_due_once_at_the_next_start_after_10() -> None:
    config = reports_config({})
    day = date(2026, 11, 21)
    yesterday = datetime(2026, 11, 20, 15, 0, tzinfo=SEOUL)
    assert missed_report_due(datetime(2026, 11, 21, 9, 30, tzinfo=SEOUL), False, config, yesterday) is None
    assert missed_report_due(datetime(2026, 11, 21, 11, 0, tzinfo=SEOUL), False, config, yesterday) == day
    assert missed_report_due(datetime(2026, 11, 21, 11, 0, tzinfo=SEOUL), True, config, yesterday) is None


@pytest.mark.parametrize(
    "since", [None, datetime(2026, 11, 21, 10, 30, tzinfo=SEOUL)], ids=["brand-new", "first-seen-after-10"]
)
def test_a_fleet_that_did_not_exist_at_report_time_missed_nothing(since: datetime | None) -> None:
    # Given a fleet first started today at 11:00 (no sample and no report before), or first seen at 10:30
    now = datetime(2026, 11, 21, 11, 0, tzinfo=SEOUL)
    # Then its first start does not call today's report missed
    assert missed_report_due(now, False, reports_config({}), since) is None


def test_a_past_day_covers_the_24_hours_before_its_report_time() -> None:
    start, end = report_period(date(2026, 11, 20), datetime(2026, 11, 21, 12, 0, tzinfo=SEOUL), reports_config({}))
    assert (start, end) == (datetime(2026, 11, 19, 10, 0, tzinfo=SEOUL), datetime(2026, 11, 20, 10, 0, tzinfo=SEOUL))


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"report_time": "25:00"}, "reports.report_time"),
        ({"offline_window": "2-7"}, "reports.offline_window"),
        ({"nope": 1}, "reports.nope"),
    ],
)
def test_a_bad_reports_section_names_the_key(section: dict, key: str) -> None:
    with pytest.raises(ReportConfigError, match=key):
        build_schedule(section, "UTC")

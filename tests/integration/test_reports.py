"""The daily report with a real Redis and a real worker: counts match the traffic, faults become issues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beat.config import DEFAULT_THRESHOLDS
from beat.thresholds import classify
from tests.support import ROOT, WorkerProcess, run_agent, wait_for

pytestmark = pytest.mark.integration

PINGS = 12
FAILS = 3


def _send_traffic(celery_app, name_suffix: str) -> None:  # type: ignore[no-untyped-def]
    oks = [celery_app.send_task("fleet.ping", queue="ledger", priority=5) for _ in range(PINGS)]
    bad = [
        celery_app.send_task("fleet.fail", args=[f"boom {name_suffix}"], queue="agents", priority=5)
        for _ in range(FAILS)
    ]
    for result in oks:
        result.get(timeout=30)
    for result in bad:
        with pytest.raises(Exception, match="boom"):
            result.get(timeout=30, propagate=True)


def test_agent_report_counts_the_pings_and_failures_that_were_sent(
    fleet_worker: WorkerProcess,
    celery_app,
    session_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    from gateway.services import reports

    # Given today's figures so far (other tests share the worker), then traffic through the real worker
    before = _settled(reports)
    _send_traffic(celery_app, "report")

    # When `agent report` runs (the worker flushes its aggregates every few seconds)
    def counted() -> dict | None:
        done = run_agent("report", "--json")
        assert done.returncode == 0, done.stderr
        now = reports.latest_report()
        fails = _row(now, "fleet.fail", "agents")["count"] - _row(before, "fleet.fail", "agents")["count"]
        pings = _row(now, "fleet.ping", "ledger")["count"] - _row(before, "fleet.ping", "ledger")["count"]
        # Each pool process flushes on its own clock: wait for both kinds of traffic, then check exact counts.
        return json.loads(done.stdout) if fails >= FAILS and pings >= PINGS else None

    result = wait_for(counted, timeout=60, interval=1.0, what="the pings and failures in the report")
    latest = reports.latest_report()

    # Then its figures moved by exactly the traffic sent, with the chart, the dashboard JSON and classifications
    def moved(name: str, queue: str, field: str) -> int:
        return _row(latest, name, queue)[field] - _row(before, name, queue)[field]

    assert (moved("fleet.ping", "ledger", "count"), moved("fleet.ping", "ledger", "failures")) == (PINGS, 0)
    assert (moved("fleet.fail", "agents", "count"), moved("fleet.fail", "agents", "failures")) == (FAILS, FAILS)
    assert latest["figures"]["summary"]["failures"] - before["figures"]["summary"]["failures"] == FAILS
    files = result["files"]
    assert Path(files["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(files["latest"]).read_text() == Path(files["markdown"]).read_text()
    dashboard = json.loads(Path(files["dashboard"]).read_text())
    # The day's failure rate depends on what other tests sent through the shared worker: the level must
    # be the one the default thresholds give for the rate the report computed.
    rate = dashboard["signal_means"]["failure_rate_pct"]
    assert rate > 0
    assert dashboard["levels"]["failure_rate_pct"] == classify(rate, DEFAULT_THRESHOLDS["failure_rate_pct"]).value
    assert ("task-failures" in result["issues"]) == (dashboard["levels"]["failure_rate_pct"] != "normal")
    assert "| fleet.fail | agents |" in latest["markdown"]


def _settled(reports) -> dict:  # type: ignore[no-untyped-def]
    """Today's report once the worker's earlier traffic is flushed: two runs a flush interval apart agree."""
    seen: list[list] = []

    def same_twice() -> dict | None:
        reports.run_report()
        latest = reports.latest_report()
        seen.append(latest["figures"]["summary"]["per_task"])
        return latest if len(seen) > 1 and seen[-1] == seen[-2] else None

    return wait_for(same_twice, timeout=60, interval=6.0, what="the earlier traffic to be flushed")


def _row(report: dict, name: str, queue: str) -> dict:
    rows = [r for r in report["figures"]["summary"]["per_task"] if r["name"] == name and r["queue"] == queue]
    return rows[0] if rows else {"count": 0, "failures": 0}


def _queued_reports(celery_app) -> int:  # type: ignore[no-untyped-def]
    from worker.fleet_status import queue_depths
    from worker.redis_client import get_redis

    busy = celery_app.control.inspect(timeout=1.0).active() or {}
    return queue_depths(get_redis())["reports"] + sum(len(tasks) for tasks in busy.values())


def _forget_report(day: str) -> None:
    from sqlalchemy import delete

    from worker.db import session_scope
    from worker.reports.models import Alert, StatusReport

    with session_scope() as session:
        session.execute(delete(Alert).where(Alert.report_date == datetime.fromisoformat(day).date()))
        session.execute(delete(StatusReport).where(StatusReport.report_date == datetime.fromisoformat(day).date()))


def _reports_of(day: str) -> list:
    from sqlalchemy import select

    from worker.db import session_scope
    from worker.reports.models import StatusReport

    with session_scope() as session:
        return list(
            session.execute(
                select(StatusReport.trigger, StatusReport.late).where(
                    StatusReport.report_date == datetime.fromisoformat(day).date()
                )
            )
        )


def test_beat_with_its_clock_at_0959_sends_the_report_at_1000_and_it_is_made_once(
    fleet_worker: WorkerProcess, celery_app
) -> None:  # type: ignore[no-untyped-def]
    # Given no report yet today and Beat's real scheduler on a clock at 09:59 (the report is made for today)
    today = datetime.now(UTC).date().isoformat()
    _forget_report(today)
    # When the clock reads 09:59:00, then 10:00:01, in two concurrent beat processes
    beats = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.beat_clock", f"{today}T09:59:00", f"{today}T10:00:01"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for beat in beats:
        out, err = beat.communicate(timeout=60)
        assert beat.returncode == 0, err
        outputs.append([json.loads(line) for line in out.splitlines()])
    # Then nothing is sent at 09:59, the daily report at 10:00 by each beat (with the minute's agents sweep)...
    for at_0959, at_1000 in outputs:
        assert [s["task"] for s in at_0959["sent"]] == []
        assert sorted(s["task"] for s in at_1000["sent"]) == [
            "agents.sweep",
            "reports.collect_metrics",
            "reports.daily_status",
        ]
    sent = [s["id"] for o in outputs for s in o[1]["sent"] if s["task"] == "reports.daily_status"]
    results = [celery_app.AsyncResult(task_id).get(timeout=60) for task_id in sent]
    # ...and exactly one report exists for the day: the second run found it stored
    assert sorted(r["stored"] for r in results) == [False, True]
    assert [trigger for trigger, _late in _reports_of(today)] == ["schedule"]


def test_two_real_beats_started_after_a_missed_report_time_make_one_late_report(
    fleet_worker: WorkerProcess, celery_app, session_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a fleet that ran yesterday and was down at its report time (00:00 here, so it has always passed today)
    today = datetime.now(UTC).date().isoformat()
    _forget_report(today)
    from beat.aggregates import HostSample
    from worker.reports import store

    yesterday = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    store.save_host_sample(HostSample(minute=yesterday))
    config = tmp_path / "fleet.yaml"
    config.write_text("reports:\n  report_time: '00:00'\n  offline_window: null\n")
    env = {**os.environ, "FLEET_CONFIG": str(config)}
    # When two `celery -A worker beat` processes start
    beats = []
    for n in range(2):
        with (tmp_path / f"beat-{n}.out").open("wb") as out:
            command = [sys.executable, "-m", "celery", "-A", "worker", "beat", "-s", str(tmp_path / f"schedule-{n}")]
            beats.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        # Then the missed report is made once, marked late, sent by the beat holding the lock only
        wait_for(lambda: _reports_of(today), timeout=60, interval=0.5, what="the missed report")
        wait_for(lambda: _queued_reports(celery_app) == 0, timeout=60, what="the report task to run")
        time.sleep(2)
        senders = ["was missed" in (tmp_path / f"beat-{n}.out").read_text() for n in range(2)]
        assert sorted(senders) == [False, True]
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(20)
    assert _reports_of(today) == [("missed", True)]


def test_agent_report_right_after_traffic_counts_it_and_samples_the_host_without_counting_itself(
    fleet_worker: WorkerProcess,
    celery_app,  # type: ignore[no-untyped-def]
) -> None:
    from gateway.services import reports

    # Given today's figures so far, then traffic through the real worker
    before = _settled(reports)
    _send_traffic(celery_app, "now")
    # When `agent report` runs once, at once (sooner than the workers' next flush)
    first = run_agent("report", "--json")
    assert first.returncode == 0, first.stderr
    figures = json.loads(Path(json.loads(first.stdout)["files"]["dashboard"]).read_text())

    # Then it counts exactly that traffic, and has a host sample of its own
    def moved(name: str, queue: str) -> int:
        now = [r for r in figures["summary"]["per_task"] if r["name"] == name and r["queue"] == queue]
        return (now[0]["count"] if now else 0) - _row(before, name, queue)["count"]

    assert (moved("fleet.ping", "ledger"), moved("fleet.fail", "agents")) == (PINGS, FAILS)
    assert {"cpu_percent", "memory_percent"} <= set(figures["signal_means"])
    # And a second report finds no SQL statement more than the first: the report's own queries are not counted
    second = run_agent("report", "--json")
    again = json.loads(Path(json.loads(second.stdout)["files"]["dashboard"]).read_text())

    def statements(found: dict) -> int:
        return sum(r["count"] for r in found["summary"]["routes"] if r["queue"] == "db")

    # (the worker's background threads may run a statement meanwhile; a report's own queries would add dozens)
    assert statements(again) - statements(figures) <= 2

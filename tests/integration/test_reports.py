"""The daily report with a real Redis and a real worker: counts match the traffic, faults become issues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, WorkerProcess, wait_for

pytestmark = pytest.mark.integration

PINGS = 12
FAILS = 3


def _agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "agent"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


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


def _task_row(result: dict, name: str, queue: str) -> dict:
    rows = [r for r in result["figures"]["summary"]["per_task"] if r["name"] == name and r["queue"] == queue]
    return rows[0] if rows else {"count": 0, "failures": 0}


def test_agent_report_counts_the_pings_and_failures_that_were_sent(
    fleet_worker: WorkerProcess, celery_app, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    from gateway.services import reports

    # Given traffic flowing through the real worker: successes on ledger, failures on agents
    before = reports.run_report()
    _send_traffic(celery_app, "report")
    ping_before = _task_row(reports.latest_report(), "fleet.ping", "ledger")["count"]

    # When `agent report` runs (the worker flushes its aggregates every few seconds)
    def counted() -> dict | None:
        done = _agent("report", "--json")
        assert done.returncode == 0, done.stderr
        latest = reports.latest_report()
        fails = _task_row(latest, "fleet.fail", "agents")
        return json.loads(done.stdout) if fails["count"] >= FAILS + _failures_before(before) else None

    result = wait_for(counted, timeout=30, interval=1.0, what="the failures in the report")
    latest = reports.latest_report()

    # Then its figures match the traffic, with the chart, the dashboard JSON and classifications
    ping = _task_row(latest, "fleet.ping", "ledger")
    fail = _task_row(latest, "fleet.fail", "agents")
    assert ping["count"] >= PINGS and ping["failures"] == 0
    assert fail["count"] - _failures_before(before) == FAILS and fail["failures"] == fail["count"]
    assert ping_before >= 0
    files = result["files"]
    assert Path(files["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(files["latest"]).read_text() == Path(files["markdown"]).read_text()
    dashboard = json.loads(Path(files["dashboard"]).read_text())
    assert dashboard["levels"]["failure_rate_pct"] in {"caution", "warning"}
    assert "task-failures" in result["issues"]
    assert "| fleet.fail | agents |" in latest["markdown"]


def _failures_before(before: dict) -> int:
    rows = [r for r in before.get("figures", {}).get("summary", {}).get("per_task", []) if r["name"] == "fleet.fail"]
    return rows[0]["count"] if rows else 0

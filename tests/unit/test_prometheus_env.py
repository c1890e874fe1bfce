"""Metrics land in the shared folder even when prometheus_client was imported first (as `celery` does).

A tripwire too: worker/prometheus_env.py switches `prometheus_client.values.ValueClass`; this fails the day
prometheus_client stops choosing its value class through that attribute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

# What the `celery` command does before any fleet code runs: Flower's plugin imports prometheus_client and
# defines its metrics. Then the fleet's modules are imported (their metrics made), the app built and counts made.
SCRIPT = """
import prometheus_client
flower_like = prometheus_client.Counter("flower_like_events", "made before the fleet's code ran")
from worker import metrics
from worker.application import get_app
get_app()
metrics.TASK_SUCCEEDED.labels("fleet.ping", "ledger").inc(3)
metrics.LEDGER_EVENTS.labels("accepted", "").inc()
metrics.LEDGER_QUICK_RUN_SECONDS.observe(0.002)
"""
READ = "import sys; from worker.metrics import render_latest; sys.stdout.buffer.write(render_latest()[0])"


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return {**env, "FLEET_LOG_DIR": str(tmp_path / "log"), "FLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}"}


def test_counts_made_after_an_early_prometheus_import_reach_another_process(tmp_path: Path) -> None:
    # Given a process without PROMETHEUS_MULTIPROC_DIR that imported prometheus_client before the fleet's code
    env = _clean_env(tmp_path)
    subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, check=True, timeout=60)

    # Then its counts are in the shared folder beside FLEET_LOG_DIR, and another process's scrape shows them
    assert list((tmp_path / "prometheus").glob("counter_*.db"))
    scraped = subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert 'celery_task_succeeded_total{name="fleet.ping",queue="ledger"} 3.0' in scraped
    assert 'ledger_events_total{code="",status="accepted"} 1.0' in scraped
    assert "ledger_quick_run_duration_seconds_count 1.0" in scraped  # no labels: made at import, before the switch
    assert "flower_like_events" not in scraped  # made before the switch: stays in its own process

"""Faults become issues with actions; /metrics parses and matches traffic; notifications survive failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT, WorkerProcess, run_agent, wait_for

pytestmark = pytest.mark.integration


def test_a_stopped_worker_and_an_error_burst_show_up_as_issues_with_actions(
    fleet_worker: WorkerProcess,
    celery_app,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Given a fleet that expects two workers, and has them
    config = tmp_path / "fleet.yaml"
    config.write_text("reports:\n  expected_workers: 2\n")
    env = {"FLEET_CONFIG": str(config)}
    extra = WorkerProcess(name="extra", queues="agents").start(celery_app)
    before = json.loads(run_agent("briefing", "--json", env=env).stdout)
    assert {c["name"]: c["status"] for c in before["components"]}["workers"] == "OK"
    # When one worker is killed and a burst of connection errors hits the logs
    extra.kill()
    burst = Path(os.environ["FLEET_LOG_DIR"]) / "fault.jsonl"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    line = {
        "ts": stamp,
        "level": "ERROR",
        "logger": "fleet.ledger",
        "category": "ledger",
        "message": "Error 111 connecting to 127.0.0.1:6399. Connection refused.",
    }
    burst.write_text("".join(json.dumps(line) + "\n" for _ in range(15)))
    try:
        briefing = run_agent("briefing", "--json", env=env)
        report = run_agent("report", "--json", env=env)
    finally:
        burst.unlink()
    # Then the briefing and the report name both issues, each with actions
    assert briefing.returncode == 0, briefing.stderr
    issues = {i["id"]: i for i in json.loads(briefing.stdout)["issues"]}
    assert {"workers-missing", "error-burst", "redis-connection-errors"} <= set(issues)
    assert all(issue["actions"] for issue in issues.values())
    assert json.loads(briefing.stdout)["health"] != "OK"
    markdown = Path(json.loads(report.stdout)["files"]["markdown"]).read_text()
    assert "Fewer workers than expected" in markdown and "A burst of errors in the logs" in markdown
    assert "1. Find which worker stopped" in markdown


def _scrape() -> dict[tuple[str, str, str], float]:
    code = (
        "import sys; from worker.application import get_app; from worker.metrics import render_latest; "
        "sys.stdout.buffer.write(render_latest(get_app())[0])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    values: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            key = (
                sample.name,
                sample.labels.get("name", ""),
                sample.labels.get("queue") or sample.labels.get("hostname", ""),
            )
            values[key] = values.get(key, 0.0) + sample.value
    return values


def test_metrics_parse_and_count_the_tasks_that_were_sent(fleet_worker: WorkerProcess, celery_app) -> None:  # type: ignore[no-untyped-def]
    # Given the fleet's counters now
    before = _scrape()
    ok_key = ("celery_task_succeeded_total", "fleet.ping", "reports")
    fail_key = ("celery_task_failed_total", "fleet.fail", "reports")
    # When 7 pings and 2 failing tasks run on the reports queue
    for _ in range(7):
        celery_app.send_task("fleet.ping", queue="reports", priority=5).get(timeout=30)
    for _ in range(2):
        celery_app.send_task("fleet.fail", queue="reports", priority=5).get(timeout=30, propagate=False)

    # Then the scraped counters moved by exactly that much
    def moved() -> dict | None:
        after = _scrape()
        done = (
            after.get(ok_key, 0) - before.get(ok_key, 0) >= 7 and after.get(fail_key, 0) - before.get(fail_key, 0) >= 2
        )
        return after if done else None

    after = wait_for(moved, timeout=20, interval=0.5, what="the counters to move")
    assert after[ok_key] - before.get(ok_key, 0) == 7
    assert after[fail_key] - before.get(fail_key, 0) == 2
    assert after[("celery_task_runtime_seconds_count", "fleet.ping", "reports")] >= 7
    assert {q for (name, _n, q) in after if name == "celery_queue_length"} == {"agents", "ledger", "reports"}
    assert after[("celery_worker_up", "", fleet_worker.hostname)] == 1


class _Webhook(BaseHTTPRequestHandler):
    """Answers 500 to the first POST, 200 after: a flaky Slack."""

    posts: list[dict[str, Any]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posts.append(body)
        self.send_response(500 if len(type(self).posts) == 1 else 200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


def test_a_failed_slack_notification_is_retried_and_email_arrives_and_the_report_is_kept(
    celery_app,
    database_url: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from aiosmtpd.controller import Controller

    from gateway.services import reports
    from worker.redis_server import free_port

    class Inbox:
        messages: list[bytes] = []  # noqa: RUF012

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append(envelope.content)
            return "250 OK"

    # Given a local webhook that fails once, a local SMTP server, and a stored report
    web = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    config = tmp_path / "fleet.yaml"
    config.write_text(
        "notifications:\n"
        f"  slack_webhook_url: http://127.0.0.1:{web.server_port}/hook\n"
        f"  email: {{host: 127.0.0.1, port: {smtp.port}, sender: fleet@example.org, recipients: [ops@example.org]}}\n"
    )
    day = date(2020, 1, 6)
    reports.run_report(day)
    worker = WorkerProcess(name="notify", queues="notify-test", env={"FLEET_CONFIG": str(config)}).start()
    try:
        # When the report is sent to both channels
        sent = [
            celery_app.send_task("reports.notify", args=[day.isoformat(), channel], queue="notify-test", priority=3)
            for channel in ("slack", "email")
        ]
        outcomes = [result.get(timeout=60) for result in sent]
    finally:
        worker.stop()
        smtp.stop()
        web.shutdown()
        web.server_close()
    # Then Slack got it on the retry, the mail arrived, the failure was logged, the report is intact
    assert [o["outcome"] for o in outcomes] == ["sent", "sent"]
    assert len(_Webhook.posts) == 2 and "Fleet status report 2020-01-06" in _Webhook.posts[1]["text"]
    assert b"Subject: [" in inbox.messages[0] and b"Fleet status report 2020-01-06" in inbox.messages[0]
    assert "notification of the 2020-01-06 report by slack failed" in worker.log_path.read_text()
    stored = reports.report_by_date(day)
    assert stored["figures"]["notified"] == {"slack": "sent", "email": "sent"}


def test_flower_sees_every_task_received_started_and_succeeded(fleet_worker: WorkerProcess, celery_app) -> None:  # type: ignore[no-untyped-def]
    # Flower's own way of following a fleet: an event receiver feeding Celery's in-memory state. The worker
    # batches its task events (EVENTS_FLUSH_S); none may be lost or arrive out of order.
    state = celery_app.events.State()
    receivers: list[Any] = []

    def follow() -> None:
        with celery_app.connection_for_read() as connection:
            receiver = celery_app.events.Receiver(connection, handlers={"*": state.event})
            receivers.append(receiver)
            receiver.capture(limit=None, timeout=None, wakeup=False)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        # The receiver subscribes when it starts consuming: wait until it sees a first task.
        def listening() -> bool:
            probe = celery_app.send_task("fleet.ping", queue="reports", priority=5)
            probe.get(timeout=30)
            return wait_until_seen(probe.id, 1.0)

        def wait_until_seen(task_id: str, seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                task = state.tasks.get(task_id)
                if task is not None and task.state == "SUCCESS":
                    return True
                time.sleep(0.05)
            return False

        wait_for(listening, timeout=30, what="the event receiver to see a first task")
        sent = [celery_app.send_task("fleet.ping", queue="reports", priority=5) for _ in range(30)]
        for result in sent:
            result.get(timeout=30)

        def all_seen() -> bool:
            tasks = [state.tasks.get(result.id) for result in sent]
            return all(t is not None and t.state == "SUCCESS" and t.received and t.started for t in tasks)

        wait_for(all_seen, timeout=10, what="task-received, -started and -succeeded of every task")
        tasks = [state.tasks[result.id] for result in sent]
        assert {t.worker.hostname for t in tasks} == {fleet_worker.hostname}
        assert all(t.received <= t.started <= t.succeeded for t in tasks)
    finally:
        for receiver in receivers:
            receiver.should_stop = True
        thread.join(10)

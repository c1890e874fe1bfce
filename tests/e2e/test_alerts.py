"""Operators hear about trouble when it starts: signed webhooks for a dead worker, an anomaly burst, an error burst.

The fleet here is real processes on a Redis database, a SQLite file and a metrics folder of their own: `agent api`
(it takes the evaluator's lease first) and one worker of the `ledger` queue, which also contends for it.
A webhook receiver (a real HTTP server in this process) verifies every delivery with the `standardwebhooks` package.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import ApiServer
from tests.ledger_cases import event
from tests.support import WorkerProcess, wait_for
from worker.redis_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "whsec_" + base64.b64encode(b"alerts-e2e-secret-of-32-bytes!!!").decode()
EVALUATE_EVERY_S = 5.0
FOR_S = 3.0
# The bound the issue sets, plus the time one sample takes (a 1 s broadcast to the workers) and a delivery.
FIRING_WITHIN_S = FOR_S + 2 * EVALUATE_EVERY_S + 3.0


class Receiver:
    """A webhook endpoint: keeps every verified delivery; answers 400 to anything not signed with SECRET."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    payload = Webhook(SECRET).verify(body, dict(self.headers.items()))
                except Exception:
                    receiver.refused += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.received.append({"id": self.headers["webhook-id"], "at": time.monotonic(), **payload})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/fleet"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, rule: str, **labels: str) -> list[dict[str, Any]]:
        """Deliveries about one incident (rule and labels), in arrival order."""
        return [
            r
            for r in self.received
            if r["data"]["rule"] == rule and all(r["data"]["labels"].get(k) == v for k, v in labels.items())
        ]


class Fleet:
    """The processes of this module and what they share."""

    def __init__(self, env: dict[str, str], api: ApiServer, broker_url: str) -> None:
        self.env, self.api, self.broker_url = env, api, broker_url
        self.worker: WorkerProcess | None = None

    def start_worker(self) -> WorkerProcess:
        self.worker = WorkerProcess(queues="ledger", name=f"alerts-{uuid.uuid4().hex[:6]}", env=self.env)
        producer = _producer(self.broker_url)
        self.worker.start(producer)
        return self.worker

    def send(self, events: list[dict[str, Any]]) -> None:
        from ledger.client import submit

        submit(events, app=_producer(self.broker_url))


def _producer(broker_url: str) -> Any:
    from ledger.client import producer_app

    return producer_app(broker_url)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The webhook receiver, for the whole module."""
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture(scope="module")
def fleet(redis_server, session_dir: Path, receiver: Receiver) -> Iterator[Fleet]:  # type: ignore[no-untyped-def]
    """`agent api` holding the lease, and one ledger worker, on resources no other test touches."""
    from worker.migrate import upgrade

    folder = session_dir / f"alerts-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    database = f"sqlite:///{folder / 'fleet.db'}"
    upgrade(database)
    broker = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + "/5"
    with redis.Redis.from_url(broker) as fresh:
        fresh.flushdb()
    config = folder / "fleet.yaml"
    config.write_text(
        f"""
alerts:
  evaluate_every_s: {EVALUATE_EVERY_S}
  webhooks:
    - url: {receiver.url}
      secret: {SECRET}
  rules:
    queue_without_worker: {{for_s: {FOR_S}}}
    ledger_anomaly: {{for_s: 0, window_s: 12}}
    task_error_rate: {{for_s: 0, window_s: 12, threshold: 0.5, min_count: 5}}
    # Figures of this shared test machine, not of the fleet: left out of this test.
    worker_memory: {{enabled: false}}
    broker_latency: {{enabled: false}}
    database_latency: {{enabled: false}}
    report_missing: {{enabled: false}}
ledger:
  anomaly: {{warmup: 5, window: 5}}
"""
    )
    env = {
        "FLEET_BROKER_URL": broker,
        "FLEET_RESULT_BACKEND": broker,
        "FLEET_DATABASE_URL": database,
        "FLEET_CONFIG": str(config),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus"),
        "FLEET_WATCHDOG_STALL_S": "0",
        "FLEET_REPORT_DIR": str(folder / "reports"),
    }
    api = ApiServer(config, folder / "api.out", env).start()
    client = redis.Redis.from_url(broker)
    wait_for(
        lambda: (client.get("fleet:alerts:leader") or b"").startswith(b"api@"),
        timeout=30,
        what="the API to hold the evaluator's lease",
    )
    client.close()
    fleet = Fleet(env, api, broker)
    fleet.start_worker()
    try:
        yield fleet
    finally:
        if fleet.worker is not None:
            fleet.worker.stop()
        api.stop()


def _exactly_one_of_each(receiver: Receiver, rule: str, **labels: str) -> None:
    deliveries = receiver.of(rule, **labels)
    assert [d["type"] for d in deliveries] == ["alert.firing", "alert.resolved"], deliveries
    firing, resolved = deliveries
    assert firing["data"]["id"] == resolved["data"]["id"]
    assert firing["data"]["started_at"] and resolved["data"]["resolved_at"]
    assert receiver.refused == 0


def test_killing_the_only_ledger_worker_while_events_wait_fires_and_its_return_resolves(
    fleet: Fleet, receiver: Receiver
) -> None:
    # Given the only worker of the ledger queue, killed
    assert fleet.worker is not None
    fleet.worker.kill()
    killed_at = time.monotonic()
    # When events wait in its queue
    p = f"dead-{uuid.uuid4().hex[:6]}"
    fleet.send([event(f"{p}-{n}", "account_opened", {"account": f"{p}-{n}", "currency": "EUR"}) for n in range(3)])
    # Then a signed alert.firing naming the queue arrives within for_s + 2 x evaluate_every_s
    firing = wait_for(
        lambda: receiver.of("queue_without_worker", queue="ledger"), timeout=FIRING_WITHIN_S, what="alert.firing"
    )[0]
    assert firing["type"] == "alert.firing" and firing["data"]["severity"] == "critical"
    assert "ledger" in firing["data"]["summary"] and firing["at"] - killed_at <= FIRING_WITHIN_S
    # When a worker returns, alert.resolved arrives
    fleet.start_worker()
    wait_for(lambda: len(receiver.of("queue_without_worker", queue="ledger")) >= 2, timeout=60, what="resolved")
    # And one more evaluation sends nothing else about it
    time.sleep(EVALUATE_EVERY_S + 1)
    _exactly_one_of_each(receiver, "queue_without_worker", queue="ledger")


def test_a_ledger_anomaly_burst_fires_once_and_resolves_once_it_is_past(fleet: Fleet, receiver: Receiver) -> None:
    # Given an account whose transfers are all 10.00
    p = f"anom-{uuid.uuid4().hex[:6]}"
    opening = {"account": f"{p}-a", "currency": "EUR", "opening_balance": "50000", "overdraft_limit": 0}
    setup = [
        event(f"{p}-o1", "account_opened", opening, at=1),
        event(f"{p}-o2", "account_opened", {"account": f"{p}-b", "currency": "EUR"}, at=2),
    ]
    quiet = [_transfer(p, n, "10.00", at=10 + n) for n in range(8)]
    fleet.send(setup + quiet)
    # When a burst of unusual amounts follows
    fleet.send([_transfer(p, 100 + n, "900.00", at=100 + n) for n in range(3)])
    # Then one signed alert.firing, and alert.resolved once the burst is older than the rule's window
    wait_for(lambda: receiver.of("ledger_anomaly"), timeout=FIRING_WITHIN_S + 30, what="anomaly alert.firing")
    wait_for(lambda: len(receiver.of("ledger_anomaly")) >= 2, timeout=60, what="anomaly alert.resolved")
    time.sleep(EVALUATE_EVERY_S + 1)
    _exactly_one_of_each(receiver, "ledger_anomaly", kind="amount")
    assert "ledger anomalies" in receiver.of("ledger_anomaly")[0]["data"]["summary"]


def test_an_error_rate_burst_fires_once_and_resolves_once_it_is_past(fleet: Fleet, receiver: Receiver) -> None:
    # Given the ledger worker running tasks
    producer = _producer(fleet.broker_url)
    # When most of its tasks fail for a moment
    results = [producer.send_task("fleet.fail", queue="ledger", priority=5) for _ in range(8)]
    wait_for(lambda: all(r.ready() for r in results), timeout=60, what="the failing tasks to run")
    # Then one signed alert.firing naming the queue, and alert.resolved once the burst is past the window
    firing = wait_for(
        lambda: receiver.of("task_error_rate", queue="ledger"), timeout=FIRING_WITHIN_S + 15, what="error alert"
    )[0]
    assert firing["data"]["labels"] == {"queue": "ledger"} and "failed" in firing["data"]["summary"]
    wait_for(lambda: len(receiver.of("task_error_rate", queue="ledger")) >= 2, timeout=60, what="error resolved")
    time.sleep(EVALUATE_EVERY_S + 1)
    _exactly_one_of_each(receiver, "task_error_rate", queue="ledger")


def _transfer(p: str, n: int, amount: str, at: float) -> dict[str, Any]:
    data = {
        "transaction_id": f"{p}-t{n}",
        "sender": f"{p}-a",
        "receiver": f"{p}-b",
        "amount": amount,
        "currency": "EUR",
    }
    return event(f"{p}-t{n}", "transaction_created", data, at=at)


def test_every_delivery_is_recorded_with_its_outcome(fleet: Fleet, receiver: Receiver) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(fleet.env["FLEET_DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT message_id, outcome, status_code FROM alert_deliveries")).all()
    engine.dispose()
    sent = {row.message_id for row in rows if row.outcome == "sent" and row.status_code == 204}
    assert {r["id"] for r in receiver.received} <= sent


def test_the_cli_and_the_api_show_the_history_and_silence_a_rule(fleet: Fleet) -> None:
    import httpx

    from tests.support import run_agent

    # Given the incidents of the tests above, resolved
    history = json.loads(run_agent("alerts", "history", "--json", env=fleet.env).stdout)
    states = {(row["rule"], row["state"]) for row in history}
    assert {("queue_without_worker", "firing"), ("queue_without_worker", "resolved")} <= states
    # When an operator silences a rule for two hours
    done = run_agent("alerts", "silence", "task_error_rate", "--for", "2h", env=fleet.env)
    assert done.returncode == 0 and "silenced until" in done.stdout
    # Then `agent alerts list` and GET /api/v1/alerts say so, and name the evaluator
    listed = json.loads(run_agent("alerts", "list", "--json", env=fleet.env).stdout)
    assert "task_error_rate" in listed["silences"] and listed["evaluator"].startswith("api@")
    body = httpx.get(fleet.api.url + "/api/v1/alerts", timeout=10).json()
    assert "task_error_rate" in body["silences"] and body["history"]
    # And a rule that does not exist, or a duration without a unit, is refused with the reason
    wrong = run_agent("alerts", "silence", "no_such_rule", "--for", "2h", env=fleet.env)
    assert wrong.returncode == 2 and "unknown rule" in wrong.stderr
    assert run_agent("alerts", "silence", "dead_letters", "--for", "2", env=fleet.env).returncode == 2
    assert run_agent("alerts", "unsilence", "task_error_rate", env=fleet.env).stdout.strip().endswith("unsilenced")
    # And the day's report lists the incidents with when they fired and resolved
    report = run_agent("report", "--json", env=fleet.env)
    assert report.returncode == 0, report.stderr
    markdown = Path(json.loads(report.stdout)["files"]["markdown"]).read_text()
    assert "## Alerts" in markdown and "`queue_without_worker` (queue=ledger)" in markdown


def test_agent_alerts_test_reaches_every_channel(fleet: Fleet, receiver: Receiver) -> None:
    from tests.support import run_agent

    done = run_agent("alerts", "test", "--channel", "webhook", env=fleet.env)
    assert done.returncode == 0 and "webhook" in done.stdout and "sent" in done.stdout
    assert [r["type"] for r in receiver.of("test")] == ["alert.firing"]


def test_when_the_evaluating_process_dies_another_takes_over_within_the_lease(fleet: Fleet) -> None:
    # Given the API holding the lease and the ledger worker contending
    client = redis.Redis.from_url(fleet.broker_url)
    assert (client.get("fleet:alerts:leader") or b"").startswith(b"api@")
    # When the API is killed (no clean release)
    assert fleet.api.process is not None
    fleet.api.process.kill()
    fleet.api.process.wait(10)
    # Then the worker's evaluator holds the lease within lease_s (3 x evaluate_every_s) and one more turn
    wait_for(
        lambda: (client.get("fleet:alerts:leader") or b"").startswith(b"worker@"),
        timeout=4 * EVALUATE_EVERY_S + 5,
        what="the worker's evaluator to take over",
    )
    client.close()

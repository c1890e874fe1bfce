"""After a run that uses every configured secret, none of them appears in logs, snapshots, reports, Redis or output."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from sqlalchemy import text

from gateway.services import agents as service
from ledger.generate import generate
from tests.fake_openai import FakeOpenAI
from tests.faults.conftest import FleetDatabase
from tests.faults.fleet import fleet_config
from tests.support import PostgresServer, WorkerProcess, run_agent, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]
MARK = "S3CR3T"
SECRETS = {
    "FLEET_API_KEYS": f"fleet-key-{MARK}-api",
    "FLEET_OPENAI_API_KEY": f"sk-{MARK}-model",
}
WEBHOOK = f"http://127.0.0.1:9/services/T000/B000/{MARK}hook"


def _redis_values(url: str) -> Iterator[str]:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                yield str(client.get(key))
            elif kind == "hash":
                yield str(client.hgetall(key))
            elif kind == "list":
                yield str(client.lrange(key, 0, -1))
            elif kind == "zset":
                yield str(client.zrange(key, 0, -1))
            elif kind == "stream":
                yield str(client.xrange(key))
    finally:
        client.close()


def _files(*folders: Path) -> Iterator[tuple[Path, str]]:
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                yield path, path.read_bytes().decode("utf-8", errors="replace")


def _status_outputs(server: PostgresServer | None) -> dict[str, str]:
    """What `agent status` prints, and with PostgreSQL also what it prints while the database is stopped."""
    outputs = {"agent status": run_agent("status", "--json", "--timeout", "2", timeout=60)}
    if server is not None:
        server.stop()
        try:
            outputs["agent status, database stopped"] = run_agent("status", "--timeout", "2", timeout=60)
        finally:
            server.start()
    return {place: done.stdout + done.stderr for place, done in outputs.items()}


def test_no_secret_appears_in_logs_snapshots_reports_or_task_arguments(
    celery_app, fleet_database: FleetDatabase, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker configured with an API key, a model key, a Slack webhook token (and a database password)
    prefix = f"secret{uuid.uuid4().hex[:6]}"
    log_dir, report_dir = Path(os.environ["FLEET_LOG_DIR"]), Path(os.environ["FLEET_REPORT_DIR"])
    with FakeOpenAI() as openai:
        env = fleet_config(
            session_dir / prefix,
            f"agents:\n  queue: agents-{prefix}\n"
            f"  openai: {{base_url: '{openai.base_url}', model: fake-1}}\n"
            f"notifications:\n  slack_webhook_url: '{WEBHOOK}'\n",
        )
        queues = f"ledger-{prefix},agents-{prefix},reports-{prefix}"
        env = {**env, **SECRETS, "FLEET_DATABASE_URL": fleet_database.url}
        worker = WorkerProcess(queues=queues, name=prefix, env=env, log_path=log_dir / f"{prefix}.out")
        worker.start(celery_app)
        try:
            # When it validates events, runs a workflow through the model, makes a report and fails to notify
            events = [i["event"] for i in generate(40, 0, seed=3, now=datetime.now(UTC), prefix=prefix)]
            celery_app.send_task("ledger.quick_run_batch", args=[events], queue=f"ledger-{prefix}").get(timeout=60)
            record = service.run("compute 42*2", profile="openai", options={"queue": f"agents-{prefix}"}, timeout_s=60)
            report = celery_app.send_task(
                "reports.daily_status", args=["2020-02-29", "manual"], queue=f"reports-{prefix}"
            ).get(timeout=120)
            celery_app.send_task("reports.notify", args=["2020-02-29", "slack"], queue=f"reports-{prefix}")
            wait_for(lambda: "reports.notify" in worker.log_path.read_text() and "retry" in worker.log_path.read_text(),
                     timeout=60, what="the failed notification logged")  # fmt: skip
            # And an operator asks for the fleet's status (with PostgreSQL, also while it is stopped)
            outputs = _status_outputs(fleet_database.server)
        finally:
            worker.stop()
    assert record["status"] == "succeeded", record["error"]
    assert openai.requests and openai.requests[-1][0]["Authorization"] == f"Bearer {SECRETS['FLEET_OPENAI_API_KEY']}"

    # Then no secret appears anywhere a person or a dashboard can read
    from worker.db import get_engine

    with get_engine(fleet_database.url).connect() as connection:
        snapshots = [str(r) for t in ("ledger_snapshots", "agent_snapshots", "agent_runs", "audit_events")
                     for r in connection.execute(text(f"SELECT * FROM {t}"))]  # fmt: skip
    places = {
        **{str(p): body for p, body in _files(log_dir, report_dir)},
        "snapshots and runs": "\n".join(snapshots),
        "redis (results, task arguments, streams)": "\n".join(_redis_values(celery_app.conf.broker_url)),
        **outputs,
    }
    secrets = [*SECRETS.values(), WEBHOOK, f"{MARK}hook"]
    if fleet_database.server is not None:  # as typed, and as spelt in the URL
        secrets += [fleet_database.server.password, quote(fleet_database.server.password, safe="")]
    leaks = {place: [s for s in secrets if s in body] for place, body in places.items()}
    leaks = {place: found for place, found in leaks.items() if found}
    masked_url = [
        place for place, body in places.items() if f"{PostgresServer.ROLE}:***@" in body
    ]  # where the URL shows, masked
    print(
        f"\nsecrets: {len(secrets)} looked for; scanned {len(places)} places ({sum(map(len, places.values()))}"
        f" characters); leaks {leaks}; a password-masked URL in {len(masked_url)} places: {masked_url}"
    )
    assert report["stored"] is not None
    assert "database" in outputs["agent status"]  # the status was printed, with its database line
    if fleet_database.server is not None:  # and the failure path ran, its error naming the database
        assert "does not answer" in outputs["agent status, database stopped"]
    assert leaks == {}

"""The fleet on a Redis that demands a password and an ACL user: a real worker, the API and Flower work, the
password shows nowhere, and every key the fleet wrote is a queue, Celery's own, or under `fleet:`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.e2e.conftest import ApiServer
from tests.support import ROOT, WorkerProcess, run_agent, wait_for
from worker.constants import REDIS_KEY_PREFIX
from worker.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER = "fleetapp"
# Kombu's priority lists of the fleet's queues, and the keys Celery and kombu keep themselves.
QUEUE_LIST = re.compile(r"^(agents(-[a-z0-9]+)?|ledger|reports)(:[1-9])?$")
CELERY_KEY = re.compile(r"^(unacked|unacked_index|unacked_mutex|_kombu\.[\w.-]+|celery-task(set)?-meta-[\w.-]+)$")


class Fleet:
    """A private password-protected Redis with a worker, the API and Flower on it, all as operators start them."""

    def __init__(self, folder: Path) -> None:
        self.password, self.default_password = f"acl-{uuid.uuid4().hex}", f"def-{uuid.uuid4().hex}"
        self.redis = RedisServer(free_port(), folder / "redis", appendonly=False, username=USER,
                                 password=self.password, requirepass=self.default_password)  # fmt: skip
        self.folder = folder
        self.database = f"sqlite:///{folder / 'fleet.db'}"
        self.logs = folder / "log"
        self.processes: list[Any] = []
        self.flower_url = ""

    @property
    def env(self) -> dict[str, str]:
        """Only documented variables: the broker URL carries the ACL user and its password."""
        return {"FLEET_BROKER_URL": self.redis.url, "FLEET_DATABASE_URL": self.database,
                "FLEET_LOG_DIR": str(self.logs), "FLEET_REPORT_DIR": str(self.folder / "reports")}  # fmt: skip

    def start(self) -> Fleet:
        """Redis, migrations, worker, API, Flower."""
        self.redis.start()
        upgraded = run_agent("db", "upgrade", env=self.env)
        assert upgraded.returncode == 0, upgraded.stderr
        worker = WorkerProcess(name="acl", env=self.env, log_path=self.folder / "worker.out").start()
        self.processes.append(worker)
        config = self.folder / "fleet.yaml"
        config.write_text(yaml.safe_dump({"gateway": {"key_cache_s": 0}}))
        self.api = ApiServer(config, self.folder / "api.out", self.env).start()
        self.processes.append(self.api)
        self._start_flower()
        return self

    def _start_flower(self) -> None:
        port = free_port()
        command = [sys.executable, "-m", "celery", "-A", "worker", "flower", f"--port={port}",
                   f"--db={self.folder / 'flower.db'}"]  # fmt: skip
        with (self.folder / "flower.out").open("ab") as out:
            process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=out)
        self.flower = process
        self.flower_url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, (self.folder / "flower.out").read_text()[-2000:]
            try:
                return httpx.get(self.flower_url + "/healthcheck", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60, what="flower")

    def stop(self) -> None:
        """Everything, Redis last."""
        if getattr(self, "flower", None) is not None:
            self.flower.terminate()
            self.flower.wait(20)
        for process in reversed(self.processes):
            process.stop()
        self.redis.stop()

    def everything_written(self) -> str:
        """Every log line and output of every process."""
        files = [*self.logs.glob("*"), *(self.folder / name for name in ("worker.out", "api.out", "flower.out"))]
        return "\n".join(path.read_text(errors="replace") for path in files if path.is_file())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The password-protected fleet, for this module."""
    started = Fleet(tmp_path_factory.mktemp("acl"))
    try:
        yield started.start()
    finally:
        started.stop()


def test_the_redis_refuses_clients_without_the_acl_users_password(fleet: Fleet) -> None:
    anonymous = redis.Redis(port=fleet.redis.port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=fleet.redis.port, username=USER, password="wrong").ping()
    assert redis.Redis.from_url(fleet.redis.url).ping()


def test_worker_api_and_flower_work_through_the_acl_user(fleet: Fleet) -> None:
    url = fleet.api.url
    # A ping goes through the API to the worker and back through the result backend, both on the ACL'd Redis
    ping = wait_for(lambda: _answered(url), timeout=90, what="the worker to answer a ping through the API")
    assert ping["answer"]["hostname"].startswith("acl@")
    run = httpx.post(url + "/api/v1/agent/run?wait=true", json={"input": "compute (12+30)*2"}, timeout=120)
    assert run.status_code == 200 and run.json()["status"] == "succeeded", run.text
    event = {"event_id": f"acl-{uuid.uuid4().hex[:8]}", "event_type": "account_opened",
             "timestamp": "2026-11-21T10:00:00Z", "api_version": "v1",
             "data": {"account_id": f"acc-{uuid.uuid4().hex[:8]}", "currency": "USD"}}  # fmt: skip
    ledger = httpx.post(url + "/api/v1/ledger/events?wait=true", json={"events": [event]}, timeout=120)
    assert ledger.status_code in (200, 202) and ledger.json()["results"][0]["event_id"] == event["event_id"]
    # Flower reads the broker (queue lengths) and the workers' events with the same user
    user, password = os.environ["FLEET_FLOWER_AUTH"].split(":", 1)
    workers = wait_for(lambda: _flower_workers(fleet, (user, password)), timeout=60, what="acl worker in Flower")
    assert any(name.startswith("acl@") for name in workers)
    lengths = httpx.get(fleet.flower_url + "/api/queues/length", auth=(user, password), timeout=30)
    assert lengths.status_code == 200 and "active_queues" in lengths.json()
    assert httpx.get(fleet.flower_url + "/metrics", timeout=10).status_code == 401


def _answered(url: str) -> dict[str, Any] | None:
    answer = httpx.post(url + "/api/v1/ping", json={"queue": "ledger", "wait_s": 5}, timeout=30)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body if body.get("answer") else None


def _flower_workers(fleet: Fleet, auth: tuple[str, str]) -> dict[str, Any] | None:
    answer = httpx.get(fleet.flower_url + "/api/workers", params={"refresh": "1"}, auth=auth, timeout=30)
    return answer.json() or None if answer.status_code == 200 else None


def test_the_password_is_masked_in_the_config_and_in_every_log_line(fleet: Fleet) -> None:
    config = httpx.get(fleet.api.url + "/api/v1/config", timeout=10)
    assert config.json()["broker_url"] == f"redis://{USER}:***@127.0.0.1:{fleet.redis.port}/0"
    status = run_agent("status", "--json", env=fleet.env, timeout=60)
    assert status.returncode == 0, status.stderr
    written = fleet.everything_written() + config.text + status.stdout + status.stderr
    # The processes did name the broker (Celery's banner, Flower's start line), each time masked
    assert re.search(rf"redis://{USER}:\*\*\*?@127\.0\.0\.1:{fleet.redis.port}/0", written)
    assert fleet.password not in written and fleet.default_password not in written


def test_every_key_the_fleet_wrote_is_a_queue_a_celery_key_or_under_the_fleet_prefix(fleet: Fleet) -> None:
    client = redis.Redis.from_url(fleet.redis.url, decode_responses=True)
    # The API's rate limit, an idempotent request, a run's stream and cache, telemetry: written by the tests above
    idempotent = {"Idempotency-Key": f"acl-{uuid.uuid4()}"}
    httpx.post(fleet.api.url + "/api/v1/ping", json={"queue": "agents", "wait_s": 0}, headers=idempotent, timeout=30)
    keys = list(client.scan_iter(count=1000))
    assert any(k.startswith(REDIS_KEY_PREFIX + "ratelimit:") for k in keys)
    assert any(k.startswith(REDIS_KEY_PREFIX + "agents:run:") for k in keys)
    strangers = [k for k in keys if not (k.startswith(REDIS_KEY_PREFIX) or QUEUE_LIST.match(k) or CELERY_KEY.match(k))]
    assert strangers == []
    assert not any(QUEUE_LIST.match(k) for k in keys if k.startswith(REDIS_KEY_PREFIX))

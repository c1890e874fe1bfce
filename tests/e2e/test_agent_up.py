"""`agent up` as a newcomer runs it: bundled Redis, SQLite, workers, beat, Flower, API; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import ROOT, wait_for
from worker.redis_server import answers, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class UpProcess:
    """`agent up` in its own folder, with its own broker port where nothing answers yet."""

    def __init__(self, tmp: Path) -> None:
        self.broker_port = free_port()
        self.api_port = free_port()
        self.flower_port = free_port()
        self.output = tmp / "up.out"
        self.env = {
            **os.environ,
            "FLEET_BROKER_URL": f"redis://127.0.0.1:{self.broker_port}/0",
            "FLEET_DATABASE_URL": f"sqlite:///{tmp / 'fleet.db'}",
            "FLEET_LOG_DIR": str(tmp / "log"),
            "FLEET_REPORT_DIR": str(tmp / "reports"),
        }
        self.env.pop("FLEET_FLOWER_AUTH", None)  # agent up generates and prints credentials
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gateway.cli",
            "up",
            "--workers",
            "2",
            "--api-port",
            str(self.api_port),
            "--flower-port",
            str(self.flower_port),
        ]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def flower_credentials(self) -> tuple[str, str]:
        line = wait_for(
            lambda: next((x for x in self.text().splitlines() if "Flower: http" in x), None),
            # A fresh checkout's first start compiles every module and builds matplotlib's font cache.
            180,
            what="the Flower URL and credentials printed by agent up",
        )
        words = line.split()
        return words[words.index("user") + 1], words[words.index("password") + 1]


@pytest.fixture
def fleet_up(tmp_path: Path) -> Iterator[UpProcess]:
    up = UpProcess(tmp_path)
    assert not answers(up.env["FLEET_BROKER_URL"]), "the test's broker port must start empty"
    up.start()
    yield up
    if up.process is not None and up.process.poll() is None:
        up.process.kill()


def test_agent_up_brings_the_fleet_online_and_ctrl_c_leaves_nothing_behind(fleet_up: UpProcess) -> None:
    # Given agent up started where no broker answers
    user, password = fleet_up.flower_credentials()
    assert "started bundled Redis" in fleet_up.text()
    flower = f"http://127.0.0.1:{fleet_up.flower_port}"

    # When the workers come up, Then Flower lists both as online, and only with credentials
    def flower_workers() -> dict[str, object] | None:
        try:
            reply = httpx.get(f"{flower}/api/workers?refresh=1", auth=(user, password), timeout=10)
        except httpx.HTTPError:
            return None
        workers = reply.json() if reply.status_code == 200 else {}
        return workers if len(workers) >= 2 else None

    workers = wait_for(flower_workers, 180, interval=0.5, what="Flower listing two workers")
    host = socket.gethostname()
    assert {f"worker1@{host}", f"worker2@{host}"} <= set(workers)
    assert httpx.get(f"{flower}/api/workers", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/healthcheck", timeout=5).status_code == 200  # docker-compose's healthcheck

    # And celery inspect ping reaches each worker by name
    for name in ("worker1", "worker2"):
        pinged = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "worker", "inspect", "ping", "-d", f"{name}@{host}", "-t", "5"],
            cwd=ROOT,
            env=fleet_up.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert pinged.returncode == 0 and "pong" in pinged.stdout, pinged.stdout + pinged.stderr

    # And the API answers, and only with the development key agent up printed
    api = f"http://127.0.0.1:{fleet_up.api_port}"
    assert httpx.get(f"{api}/health/live", timeout=5).json() == {"status": "ok"}
    key_line = next(x for x in fleet_up.text().splitlines() if "API key (admin, development" in x)
    token = key_line.split()[-1]
    assert httpx.get(f"{api}/api/v1/tools", timeout=10).status_code == 401
    assert httpx.get(f"{api}/api/v1/tools", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200

    # When Ctrl-C is pressed
    assert fleet_up.process is not None
    children = psutil.Process(fleet_up.process.pid).children(recursive=True)
    assert len(children) >= 5  # two workers (+ pool processes), beat, flower, api, redis
    fleet_up.process.send_signal(signal.SIGINT)
    assert fleet_up.process.wait(90) == 0

    # Then no process is left behind and the log says so
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    assert "all processes stopped" in fleet_up.text()
    assert not answers(fleet_up.env["FLEET_BROKER_URL"])

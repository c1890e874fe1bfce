"""`agent up` with a worker killed again and again: restarted with backoff, then a long wait; the rest stays up."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import AGENT
from tests.support import wait_for
from worker.redis_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]
KILLS = 6  # one more than the restart budget (worker/restart_policy.py: 5 in 5 minutes)


def _child(up: psutil.Process, *words: str) -> psutil.Process | None:
    """The child of `agent up` whose command line holds every word (not a pool process of it)."""
    for child in up.children():
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if all(word in command for word in words):
            return child
    return None


def _live(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/live", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_a_worker_killed_past_its_restart_budget_waits_while_the_api_flower_and_beat_stay_up(tmp_path: Path) -> None:
    # Given `agent up` as the README starts it, with only the documented environment
    api_port, flower_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "FLEET_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "FLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'fleet.db'}",
        "FLEET_LOG_DIR": str(tmp_path / "log"),
        "FLEET_REPORT_DIR": str(tmp_path / "reports"),
    }
    output = tmp_path / "up.out"
    command = [AGENT, "up", "--api-port", str(api_port), "--flower-port", str(flower_port)]
    with output.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{api_port}"
    try:
        up = psutil.Process(process.pid)
        wait_for(lambda: _live(api), 120, 0.5, what="the API of agent up")
        others = {name: wait_for(lambda name=name: _child(up, name), 60, what=name) for name in ("flower", "beat")}
        others["api"] = _child(up, "gateway.cli", "api")
        killed: list[int] = []

        # When worker1 is SIGKILLed as soon as it runs, again and again, one more time than its restart budget
        for _ in range(KILLS):
            worker = wait_for(
                lambda: (w := _child(up, "worker1@")) is not None and w.pid not in killed and w,
                90,
                0.1,
                what=f"worker1 started again after {len(killed)} kills: {output.read_text(errors='replace')[-2000:]}",
            )
            os.killpg(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
            assert _live(api)

        # Then agent up said why it restarted it each time, and that the budget is spent and it waits
        text = wait_for(lambda: "spent its budget" in (t := output.read_text(errors="replace")) and t, 30)
        assert text.count("worker1 was killed by SIGKILL (9); restarting it in") == KILLS - 1
        assert "worker1 was killed by SIGKILL (9); 5 restarts in the last 5 min spent its budget of 5" in text
        assert "giving up" not in text
        # And the API, Flower and Beat never stopped: same processes, the API answering
        assert all(p is not None and p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in others.values())
        assert {n: _child(up, *(("gateway.cli", "api") if n == "api" else (n,))) for n in others} == others
        assert _live(api)
        assert httpx.get(f"http://127.0.0.1:{flower_port}/healthcheck", timeout=5).status_code == 200

        # And Ctrl-C still stops everything while the worker waits to be started again
        process.send_signal(signal.SIGINT)
        assert process.wait(90) == 0
        assert "all processes stopped" in output.read_text(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

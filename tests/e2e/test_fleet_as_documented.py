"""The fleet started exactly as the README says, in an environment holding only the documented variables.

`agent up` runs as a process; a second worker is started by hand with `celery -A worker worker -Q ledger`.
Neither inherits pytest's environment: a variable only pytest had (PROMETHEUS_MULTIPROC_DIR) hid that
`/metrics` showed no worker series in real use.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.client import FleetHttpClient, make_app, submit_ledger_events
from ledger.generate import generate
from tests.processes import exit_or_fail
from tests.support import ROOT, wait_for
from tests.unit.test_deploy_files import deploy_metric_names
from worker.redis_server import answers, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
HOST = socket.gethostname()
WORKFLOW = {"input": "compute (12+30)*2", "mode": "planner", "profile": "local", "options": {}}
# Families that the traffic below must have counted (a value above zero).
COUNTED = {
    "celery_task_succeeded_total",
    "celery_task_failed_total",
    "celery_task_runtime_seconds",
    "celery_task_queue_wait_seconds",
    "celery_worker_up",
    "fleet_http_request_duration_seconds",
    "fleet_db_query_duration_seconds",
    "agent_requests_total",
    "agent_tool_calls_total",
    "agent_stage_duration_seconds",
    "ledger_events_total",
    "ledger_quick_run_duration_seconds",
}
# Present with a sample, possibly zero: live gauges of an idle broker; tokens of the `local` profile (none);
# retries (no documented traffic retries a task; each task's retried counter starts at zero with its first run).
PRESENT = {
    "celery_queue_length",
    "agent_tokens_used_total",
    "celery_task_retried_total",
    "fleet_messages_restored_total",
}


def documented_env(tmp: Path, broker_port: int, **extra: str) -> dict[str, str]:
    """PATH (the venv's commands first, as after `. .venv/bin/activate`), HOME and FLEET_* variables only."""
    return {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "FLEET_BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
        "FLEET_DATABASE_URL": f"sqlite:///{tmp / 'fleet.db'}",
        "FLEET_LOG_DIR": str(tmp / "log"),
        "FLEET_REPORT_DIR": str(tmp / "reports"),
        **extra,
    }


@dataclass
class Up:
    """A running `agent up` and what it printed."""

    process: subprocess.Popen[bytes]
    output: Path
    env: dict[str, str]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def printed(self, marker: str, timeout: float = 120) -> str:
        """The first line holding `marker`, once agent up printed it."""

        def found() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(f"agent up exited with {self.process.returncode}: {self.text()[-3000:]}")
            return next((line for line in self.text().splitlines() if marker in line), None)

        return str(wait_for(found, timeout, interval=0.2, what=f"{marker!r} from agent up"))

    def stop(self) -> None:
        """Ctrl-C, as a user stops it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_up(tmp: Path, *args: str, **env: str) -> Up:
    """`agent up ARGS` in its own folder, on a broker port where nothing answers yet."""
    tmp.mkdir(parents=True, exist_ok=True)
    broker_port = free_port()
    up_env = documented_env(tmp, broker_port, **env)
    assert not answers(up_env["FLEET_BROKER_URL"])
    output = tmp / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "agent"), "up", *args], cwd=ROOT, env=up_env, stdout=out, stderr=subprocess.STDOUT
        )
    return Up(process, output, up_env)


@dataclass
class Fleet:
    """`agent up` (agents and reports queues) plus a worker started by hand on the ledger queue."""

    up: Up
    api: str
    token: str
    flower: str
    hand_worker: subprocess.Popen[bytes]

    def client(self) -> FleetHttpClient:
        return FleetHttpClient(self.api, self.token, timeout=120)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("documented")
    # A report time that has always passed today: a brand-new fleet must still not call it missed.
    config = tmp / "fleet.yaml"
    config.write_text("reports:\n  report_time: '00:00'\n  offline_window: null\n")
    api_port, flower_port = free_port(), free_port()
    ports = ["--api-port", str(api_port), "--flower-port", str(flower_port)]
    up = start_up(tmp, "--queues", "agents,reports", *ports, FLEET_CONFIG=str(config))
    hand_worker = None
    try:
        token = up.printed("API key (admin, development").split()[-1]
        up.printed("logs: ")
        api = f"http://127.0.0.1:{api_port}"
        wait_for(lambda: _answers(api + "/health/live"), 60, interval=0.2, what="the API")
        with (tmp / "hand-worker.out").open("wb") as out:
            hand_worker = subprocess.Popen(
                ["celery", "-A", "worker", "worker", "-Q", "ledger", "-n", "byhand@%h"],
                cwd=ROOT,
                env=up.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        yield Fleet(up, api, token, f"http://127.0.0.1:{flower_port}", hand_worker)
    finally:
        try:
            if hand_worker is not None:
                _stop_hand_worker(hand_worker, tmp / "hand-worker.out")
        finally:
            up.stop()


def _stop_hand_worker(worker: subprocess.Popen[bytes], output: Path) -> None:
    """SIGTERM, as a supervisor stops it; a worker that hangs is killed and the test fails with its output."""
    worker.terminate()

    def kill() -> None:
        worker.kill()
        worker.wait(10)

    exit_or_fail(
        worker, 60, "the by-hand worker, after SIGTERM,", lambda: output.read_text(errors="replace")[-6000:], kill
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _scrape(fleet: Fleet) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples per family name (Prometheus names: counters end in _total) from the API's /metrics."""
    reply = httpx.get(fleet.api + "/metrics", headers={"Authorization": f"Bearer {fleet.token}"}, timeout=30)
    assert reply.status_code == 200, reply.text
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(reply.text):
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = [(s.labels, s.value) for s in family.samples if not s.name.endswith("_created")]
    return families


def _counted(samples: list[tuple[dict[str, str], float]]) -> bool:
    return any(value > 0 for _labels, value in samples)


def readme_metric_names() -> set[str]:
    """The metric names the README and the operations page name (a Prometheus suffix, labels in braces dropped)."""
    text = "\n".join((ROOT / page).read_text(encoding="utf-8") for page in ("README.md", "docs/operations.md"))
    found = re.findall(
        r"`((?:celery|fleet|agent|ledger)_[a-z_]+?(?:_total|_seconds|_length|_up))(?:\{[a-z,]*\})?`", text
    )
    return set(found)


def _send_traffic(fleet: Fleet) -> None:
    """Pings on both queues, two failures, 40 ledger events and a workflow, each waited for."""
    with fleet.client() as client:
        for queue, worker in (("agents", "worker1"), ("ledger", "byhand"), ("agents", "worker1")):
            # The worker started by hand may still be starting: its queue's ping waits for it.
            answer = wait_for(lambda q=queue: client.ping(q)["answer"], 120, interval=0.5, what=f"a ping on {queue}")
            assert answer["hostname"] == f"{worker}@{HOST}"
        producer = make_app(fleet.up.env["FLEET_BROKER_URL"])
        for failure in [producer.send_task("fleet.fail", queue="agents", priority=5) for _ in range(2)]:
            failure.get(timeout=120, propagate=False)
            assert failure.state == "FAILURE"
        events = [item["event"] for item in generate(40, seed=17, prefix="doc")]
        answer = client.submit_ledger_events(events, wait=True)
        assert len(answer["results"]) == 40, answer
        run = client.run_workflow(WORKFLOW, wait=True)
        assert run["status"] == "succeeded", run


def test_metrics_of_every_process_reach_the_api_with_every_documented_name(fleet: Fleet) -> None:
    # Given the fleet as documented, When traffic runs through it
    _send_traffic(fleet)

    # Then /metrics counts it, from agent up's worker and API and from the worker started by hand
    def complete() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        families = _scrape(fleet)
        return families if all(_counted(families.get(name, [])) for name in COUNTED) else None

    try:
        families = wait_for(complete, 60, interval=1, what="every counted family above zero")
    except AssertionError:
        families = _scrape(fleet)
        missing = sorted(name for name in COUNTED if not _counted(families.get(name, [])))
        raise AssertionError(f"no counts for {missing}; families: {sorted(families)}") from None
    ledger_pings = [v for labels, v in families["celery_task_succeeded_total"] if labels["queue"] == "ledger"]
    assert sum(ledger_pings) >= 1 and _counted(families["ledger_events_total"])  # only the hand worker reads ledger
    assert {f"worker1@{HOST}", f"byhand@{HOST}"} <= {labels["hostname"] for labels, _ in families["celery_worker_up"]}
    assert {labels["queue"] for labels, _ in families["celery_queue_length"]} == {"agents", "ledger", "reports"}

    # And every name the README or docs/operations.md, the Grafana dashboard and the alert rules use is exported
    documented = readme_metric_names()
    assert len(documented) >= 12, documented
    assert documented <= COUNTED | PRESENT, documented - (COUNTED | PRESENT)
    deploy = deploy_metric_names()
    assert deploy and deploy <= COUNTED | PRESENT, deploy - (COUNTED | PRESENT)
    assert all(name in families for name in PRESENT | COUNTED)


def test_the_terminal_shows_start_up_and_problems_not_a_line_per_run(fleet: Fleet) -> None:
    # Given the fleet ran workflows (each writes audit and run lines to the log files)
    with fleet.client() as client:
        run = client.run_workflow(WORKFLOW, wait=True)
    assert run["status"] == "succeeded"
    log_dir = Path(fleet.up.env["FLEET_LOG_DIR"])
    wait_for(
        lambda: any(run["run_id"] in p.read_text(errors="replace") for p in log_dir.glob("*.jsonl")),
        30,
        what="the run's lines in the log files",
    )
    text = fleet.up.text()
    # Then agent up's terminal has its start-up lines but none of the run's lines
    assert "ready." in text and "Uvicorn running on" in text
    assert run["run_id"] not in text
    assert '"logger":"uvicorn.access"' not in text and "Sending due task" not in text
    # And a brand-new fleet missed no report, and Flower did not warn about workers not answering yet
    assert "was missed" not in text
    assert "Inspect method" not in text


def test_the_briefing_knows_the_flower_and_api_that_agent_up_started(fleet: Fleet) -> None:
    # Given `agent up` runs Flower and the API; When `agent briefing` runs in another terminal
    done = subprocess.run(
        ["agent", "briefing", "--json"], cwd=ROOT, env=fleet.up.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    components = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    # Then both are observed, not "LIMITED (not configured)"
    assert components["flower"]["status"] == "OK", components["flower"]
    assert components["api"]["status"] == "OK", components["api"]


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_per_event_lines_reach_the_terminal_only_with_verbose(tmp_path: Path, verbose: bool) -> None:
    # Given agent up with one worker (and --verbose or not)
    flags = ["--no-beat", "--no-flower", "--no-api", *(["--verbose"] if verbose else [])]
    up = start_up(tmp_path, *flags)
    try:
        up.printed("logs: ")
        up.printed("ready.")
        # When 30 accepted ledger events run
        events = [item["event"] for item in generate(30, seed=3, prefix=f"v{int(verbose)}")]
        results = submit_ledger_events(events, broker_url=up.env["FLEET_BROKER_URL"])
        statuses = [result.get(timeout=120)["status"] for result in results]
        assert statuses.count("accepted") >= 20, statuses
    finally:
        up.stop()
    text = up.text()
    shown = [e["event_id"] for e, s in zip(events, statuses, strict=True) if s == "accepted" and e["event_id"] in text]
    # Then quiet prints none of them (they are in the log files), verbose prints every one
    assert shown == (
        [e["event_id"] for e, s in zip(events, statuses, strict=True) if s == "accepted"] if verbose else []
    )
    assert "all processes stopped" in text

"""A provider outage through real worker processes: the chain fails over, the shared breaker opens, shows in
`agent status` and /metrics, logs a line, and closes again when the endpoint recovers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.services import agents as service
from gateway.services.fleet import fleet_status
from tests.fake_openai import FakeOpenAI
from tests.support import ROOT, WorkerProcess, wait_for
from worker.application import get_app
from worker.metrics import render_latest

pytestmark = [pytest.mark.integration, pytest.mark.faults]
QUEUE = "agents-failover"
RESET_S = 10  # long enough that a loaded machine still sees the breaker open after the first run


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI() as primary, FakeOpenAI() as backup:
        yield primary, backup


@pytest.fixture(scope="module")
def failover_worker(  # type: ignore[no-untyped-def]
    celery_app, database_url: str, session_dir: Path, servers: tuple[FakeOpenAI, FakeOpenAI]
) -> Iterator[tuple[WorkerProcess, Path]]:
    """Two worker processes (they share the breaker through Redis) with a two-endpoint chain."""
    primary, backup = servers
    folder = session_dir / QUEUE
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fleet.yaml"
    config.write_text(
        "agents:\n"
        f"  queue: {QUEUE}\n"
        f"  breaker: {{failures: 2, window_s: 60, reset_s: {RESET_S}}}\n"
        "  openai:\n"
        "    model: fake-1\n"
        "    timeout_s: 1\n"
        "    retries: 1\n"
        "    retry_backoff_s: 0.05\n"
        "    chain:\n"
        f"      - {{name: primary, base_url: '{primary.base_url}'}}\n"
        f"      - {{name: backup, base_url: '{backup.base_url}', model: fake-2}}\n"
    )
    env = {"FLEET_CONFIG": str(config), "FLEET_OPENAI_API_KEY": "test-key", "FLEET_LOG_DIR": str(folder / "log")}
    worker = WorkerProcess(queues=QUEUE, concurrency=2, name=QUEUE, env=env).start(celery_app)
    yield worker, folder / "log"
    worker.stop()


def _run(text: str) -> dict[str, object]:
    return service.run(text, profile="openai", options={"queue": QUEUE}, timeout_s=30)


def _provider(record: dict[str, object]) -> dict[str, object]:
    stages = record["stages"]
    assert isinstance(stages, list)
    return stages[0]["output"]["provider"]  # type: ignore[no-any-return]


def _endpoints() -> dict[str, str]:
    """The breakers as `agent status` reports them (the test process reads the same Redis)."""
    return dict(fleet_status(timeout=0.5).get("model_endpoints") or {})


@pytest.mark.parametrize("outage", ["fail", "hang"])
def test_a_chain_whose_first_endpoint_is_down_answers_from_the_second_and_opens_then_closes_the_breaker(
    failover_worker: tuple[WorkerProcess, Path], servers: tuple[FakeOpenAI, FakeOpenAI], outage: str
) -> None:
    primary, _backup = servers
    _worker, log_dir = failover_worker
    primary.mode = outage

    first = _run("compute 21*2")
    assert first["status"] == "succeeded", first["error"]
    assert first["output"]["results"]["s1"]["value"] == "42"  # type: ignore[index]
    assert _provider(first)["answered"] == "backup:fake-2"
    assert _endpoints()["primary"] == "open"
    assert 'agent_provider_breaker_state{endpoint="primary"} 2.0' in render_latest(get_app())[0].decode()

    tried = primary.answered()
    second = _run("compute 2*3")
    assert _provider(second) == {"answered": "backup:fake-2", "failovers": ["primary: circuit open, skipped"]}
    assert primary.answered() == tried  # the open breaker spared the endpoint

    lines = [json.loads(line) for path in log_dir.glob("*.jsonl*") for line in path.read_text().splitlines()]
    opened = [line for line in lines if line.get("breaker") == "open" and line.get("endpoint") == "primary"]
    assert opened and opened[0]["category"] == "agent" and opened[0]["level"] == "ERROR"

    primary.mode = "ok"
    wait_for(
        lambda: _endpoints()["primary"] == "half_open",
        timeout=RESET_S + 10,
        what="the breaker to become half-open after its reset time",
    )
    third = _run("compute 5*5")
    assert _provider(third) == {"answered": "primary:fake-1", "failovers": []}
    assert _endpoints()["primary"] == "closed"


def test_agent_eval_on_the_failover_samples_scores_every_answer_from_the_backup(
    failover_worker: tuple[WorkerProcess, Path], servers: tuple[FakeOpenAI, FakeOpenAI], tmp_path: Path
) -> None:
    primary, _backup = servers
    primary.mode = "fail"
    samples = tmp_path / "eval-failover"
    shutil.copytree(ROOT / "samples" / "eval-failover", samples)
    for path in (samples / "inputs").glob("*.json"):  # the samples run on this module's worker
        path.write_text(json.dumps({**json.loads(path.read_text()), "options": {"queue": QUEUE}}, ensure_ascii=False))

    summary = service.evaluate(samples, profile="openai", parallel=2)

    assert summary["metrics"]["samples"] == 3
    assert summary["metrics"]["accuracy"] == 1.0 and summary["metrics"]["schema_compliance_pct"] == 100.0
    scored = [json.loads(line) for line in (Path(summary["results_dir"]) / "samples.jsonl").read_text().splitlines()]
    assert {s["provider"] for s in scored} == {"backup"}


def test_failures_counted_at_once_by_many_callers_are_all_kept(redis_server) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    import redis as redis_client

    from agents.breaker import BreakerSettings
    from worker.agents.breakers import breaker

    client = redis_client.Redis.from_url(redis_server.url, decode_responses=True)
    shared = breaker(BreakerSettings(failures=1000, window_s=600, reset_s=60), client)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _i: shared.failed("concurrent"), range(200)))

    assert len(shared.store.load("concurrent").failures) == 200
    assert shared.statuses()["concurrent"] == "closed"

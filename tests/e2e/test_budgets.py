"""Budgets per API key over real uvicorn and a real worker: a key past its budget is refused with
`budget_exceeded`, moved to a cheaper profile or held, and its usage is exact in `agent keys list` and /metrics."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.services import keys as key_service
from tests.e2e.conftest import AGENT, ApiServer
from tests.fake_openai import FakeOpenAI
from tests.support import ROOT, WorkerProcess

pytestmark = pytest.mark.e2e
QUEUE = "agents-budget"
RUN = {"input": "compute 21*2", "profile": "openai"}


@pytest.fixture(scope="module")
def fleet(celery_app, database_url: str, session_dir: Path) -> Iterator[tuple[ApiServer, dict[str, str], Path]]:  # type: ignore[no-untyped-def]
    """Three keys (own budget refusing, default budget moving to `local`, own budget holding), the API and a
    worker sharing one FLEET_CONFIG whose openai profile is a fake model (150 tokens, cost 0.12 per plan)."""
    keys = {name: key_service.create_key(f"budget-{name}", ["run"]) for name in ("refuse", "cheaper", "hold")}
    folder = session_dir / QUEUE
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fleet.yaml"
    with FakeOpenAI() as model:
        config.write_text(
            "gateway: {key_cache_s: 0}\n"
            "agents:\n"
            f"  queue: {QUEUE}\n"
            f"  openai: {{base_url: '{model.base_url}', model: fake-1, prompt_price_per_1k: 0.5, completion_price_per_1k: 2.0}}\n"
            "  budgets:\n"
            "    default: {tokens_per_day: 100, over: cheaper}\n"
            "    keys:\n"
            f"      {keys['refuse'][0].key_id}: {{tokens_per_day: 200, cost_per_day: 10}}\n"
            f"      {keys['hold'][0].key_id}: {{cost_per_day: 0.1, over: hold}}\n"
        )
        env = {"FLEET_CONFIG": str(config), "FLEET_OPENAI_API_KEY": "test-key"}
        worker = WorkerProcess(queues=QUEUE, name=QUEUE, env=env).start(celery_app)
        api = ApiServer(config, session_dir / "log" / "api-budget.out", env).start()
        try:
            yield api, {name: token for name, (_info, token) in keys.items()}, config
        finally:
            api.stop()
            worker.stop()
            for info, _token in keys.values():
                key_service.revoke_key(info.key_id)


def _run(api: ApiServer, token: str) -> httpx.Response:
    return httpx.post(f"{api.url}/api/v1/agent/run?wait=true", json=RUN, headers={"X-API-Key": token}, timeout=60)


def _agent(config: Path, *args: str) -> str:
    env = {**os.environ, "FLEET_CONFIG": str(config)}
    return subprocess.run([AGENT, *args], cwd=ROOT, capture_output=True, text=True, check=True, env=env).stdout


def _keys_list(config: Path) -> dict[str, dict[str, Any]]:
    return {k["name"]: k["usage_today"] for k in json.loads(_agent(config, "keys", "list", "--json"))}


def test_a_key_over_its_budget_is_refused_with_budget_exceeded_and_its_usage_is_exact(
    fleet: tuple[ApiServer, dict[str, str], Path],
) -> None:
    api, tokens, config = fleet
    # Given a key with 200 tokens a day: two plans of 150 tokens (the second starts at 150, under the limit)
    for _ in range(2):
        response = _run(api, tokens["refuse"])
        assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text

    # When it asks for a third run
    refused = _run(api, tokens["refuse"])

    # Then it is refused with a problem that says why and when it resets
    assert refused.status_code == 429
    problem = refused.json()
    assert problem["code"] == "budget_exceeded"
    assert "used 300 of 200 tokens today (UTC)" in problem["detail"] and "00:00 UTC" in problem["detail"]
    # And its usage is exact, in `agent keys list` and in /metrics
    usage = _keys_list(config)["budget-refuse"]
    assert usage == {"tokens_today": 300, "cost_today": 0.24, "tokens_per_day": 200, "cost_per_day": 10.0,
                     "over_budget": True}  # fmt: skip
    listed = _agent(config, "keys", "list")
    assert "today 300/200 tokens, cost 0.24/10 OVER BUDGET" in listed
    metrics = httpx.get(f"{api.url}/metrics", headers={"X-API-Key": tokens["refuse"]}, timeout=30).text
    key_id = tokens["refuse"].split("_")[1]
    assert f'agent_key_tokens_today{{key="{key_id}"}} 300.0' in metrics


def test_a_key_over_the_default_budget_runs_on_the_cheaper_profile(
    fleet: tuple[ApiServer, dict[str, str], Path],
) -> None:
    api, tokens, config = fleet
    first = _run(api, tokens["cheaper"]).json()
    assert first["request"]["profile"] == "openai"

    second = _run(api, tokens["cheaper"]).json()

    assert second["status"] == "succeeded" and second["output"]["results"]["s1"]["value"] == "42"
    assert second["request"]["profile"] == "local"
    assert second["request"]["options"]["budget"]["action"] == "cheaper"
    assert _keys_list(config)["budget-cheaper"]["tokens_today"] == 150  # the local planner spent nothing


def test_a_key_over_a_hold_budget_waits_for_a_person(fleet: tuple[ApiServer, dict[str, str], Path]) -> None:
    api, tokens, _config = fleet
    assert _run(api, tokens["hold"]).json()["status"] == "succeeded"  # cost 0.12: past 0.1 from now on

    held = _run(api, tokens["hold"]).json()

    assert held["status"] == "awaiting_approval"
    reasons = held["stages"][1]["output"]["verdict"]["reasons"]
    assert any("over its budget, held for a person" in r for r in reasons)

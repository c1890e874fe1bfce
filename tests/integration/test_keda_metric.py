"""The query each KEDA ScaledObject asks Prometheus answers, from a real scrape, every waiting message of its queue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.kustomize import render
from tests.support import ROOT
from worker.fleet_status import priority_lists
from worker.redis_server import RedisServer

pytestmark = pytest.mark.integration

SCRAPE = "from worker.application import get_app; from worker.metrics import render_latest; import sys; sys.stdout.write(render_latest(get_app())[0].decode())"


def test_the_keda_query_sees_messages_in_every_priority_list(redis_server: RedisServer, tmp_path: Path) -> None:
    # Given messages waiting in the ledger queue's lower-priority lists only (a database no worker reads)
    url = redis_server.url.rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    lists = priority_lists("ledger")
    client.rpush(lists[5], *[b"{}"] * 3)
    client.rpush(lists[8], *[b"{}"] * 4)
    try:
        # When the fleet's metrics are scraped by a real process, as Prometheus scrapes the API
        env = {**os.environ, "FLEET_BROKER_URL": url, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
        scraped = subprocess.run(
            [sys.executable, "-c", SCRAPE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
        ).stdout
        first_list = client.llen(lists[0])
    finally:
        client.flushdb()
    depth = {
        sample.labels["queue"]: sample.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "celery_queue_length"
        for sample in family.samples
    }
    # Then the ledger ScaledObject's query (max over the API pods of the gauge for its queue) sees all seven,
    # where the first list alone (what a KEDA redis-lists trigger reads) holds none
    (ledger,) = [
        o
        for o in render(ROOT / "deploy" / "k8s" / "base")
        if o["metadata"]["name"] == "fleet-worker-ledger" and o["kind"] == "ScaledObject"
    ]
    assert ledger["spec"]["triggers"][0]["metadata"]["query"] == 'max(celery_queue_length{queue="ledger"})'
    assert depth == {"agents": 0, "ledger": 7, "reports": 0}
    assert first_list == 0

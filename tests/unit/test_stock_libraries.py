"""FLEET_STOCK_LIBRARIES=true builds the fleet on the libraries' own code: none of the patches of docs/PATCHES.md.

Each mode runs in a process of its own (the patches are process-wide), as `celery -A worker` would load it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

# What the `celery` command does first (Flower's plugin imports prometheus_client), then the app as a worker sees it.
PROBE = """
import json, prometheus_client
import celery.app.trace, celery.worker.request
from celery.utils.saferepr import saferepr
from kombu.serialization import registry
from kombu.utils import json as kombu_json
from prometheus_client import values
from worker import app, metrics
with app.connection_for_write() as connection:
    transport = type(connection.transport)
with app.pool.acquire(block=False) as producer:
    pooled = type(producer.transport)
print(json.dumps({
    "transport": f"{transport.__module__}.{transport.__name__}",
    "producer_transport": f"{pooled.__module__}.{pooled.__name__}",
    "consumer": app.conf.worker_consumer,
    "saferepr": [m.saferepr is saferepr for m in (celery.app.trace, celery.worker.request)],
    "json_decoder_is_kombus": registry._decoders["application/json"] is kombu_json.loads,
    "value_class_switched": bool(getattr(values.ValueClass, "_multiprocess", False)),
}))
"""


def _probe(tmp_path: Path, stock: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in {"FLEET_STOCK_LIBRARIES", "PROMETHEUS_MULTIPROC_DIR"}}
    env["FLEET_LOG_DIR"] = str(tmp_path / "log")
    if stock is not None:
        env["FLEET_STOCK_LIBRARIES"] = stock
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, check=True, timeout=120, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_stock_switch_builds_the_fleet_on_the_libraries_own_code(tmp_path: Path) -> None:
    assert _probe(tmp_path, "true") == {
        "transport": "kombu.transport.redis.Transport",
        "producer_transport": "kombu.transport.redis.Transport",
        "consumer": "worker.dead_letters:DeadLetterConsumer",
        "saferepr": [True, True],
        "json_decoder_is_kombus": True,
        "value_class_switched": False,
    }


@pytest.mark.parametrize("stock", [None, "false"])
def test_by_default_the_fleet_runs_with_its_patches(tmp_path: Path, stock: str | None) -> None:
    assert _probe(tmp_path, stock) == {
        "transport": "worker.transport.Transport",
        "producer_transport": "worker.transport.Transport",
        "consumer": "worker.task_events:FleetConsumer",
        "saferepr": [False, False],
        "json_decoder_is_kombus": False,
        "value_class_switched": True,
    }

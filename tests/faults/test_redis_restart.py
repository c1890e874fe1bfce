"""Redis restarts in the middle of a stream: workers reconnect and keep consuming, nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support import WorkerProcess, wait_for
from worker.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.patches]
RESTARTS = 5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), data_dir=tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


def _producer(url: str) -> Celery:
    """A producer without a result backend: results are read straight from Redis, so no subscription
    outlives a restart."""
    import celeryconfig

    app = Celery(broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        broker_transport_options=celeryconfig.broker_transport_options,
        broker_connection_retry_on_startup=True,
    )
    return app


def test_workers_keep_consuming_after_redis_restarts(own_redis: RedisServer, tmp_path: Path) -> None:
    # Given a worker consuming from a Redis with append-only persistence
    env = {"FLEET_BROKER_URL": own_redis.url, "FLEET_LOG_DIR": str(tmp_path / "log"), "FLEET_WORKER_LOST_AFTER_S": "3"}
    worker = WorkerProcess(queues="ledger", name="restart", env=env, log_path=tmp_path / "worker.out")
    producer = _producer(own_redis.url)
    worker.start()
    try:
        _stream_through_restarts(producer, worker, own_redis)
    finally:
        worker.stop()
        producer.close()


def _done(url: str, ids: list[str]) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return [i for i, meta in zip(ids, client.mget([f"celery-task-meta-{i}" for i in ids]), strict=True) if meta]
    finally:
        client.close()


def _returned(url: str) -> int:
    """Messages given back to their queues today (what a consumer held when its connection died)."""
    from worker.ownership import restored_key

    client = redis.Redis.from_url(url)
    try:
        return sum(int(v) for v in client.hvals(restored_key()))
    finally:
        client.close()


def _stream_through_restarts(producer: Celery, worker: WorkerProcess, own_redis: RedisServer) -> None:
    before = [producer.send_task("fleet.ping", queue="ledger", priority=5).id for _ in range(50)]
    wait_for(lambda: len(_done(own_redis.url, before)) == 50, 60, what="the first 50 pings answered")

    # When Redis restarts again and again while messages are queued
    figures: list[tuple[int, int, int]] = []
    for _ in range(RESTARTS):
        queued = [producer.send_task("fleet.ping", queue="ledger", priority=5).id for _ in range(50)]
        given_back = _returned(own_redis.url)
        own_redis.stop()
        own_redis.start()

        # Then every message sent before and after the restart is consumed, by the fleet alone: what a worker held
        # when its connection died comes back by itself (no visibility timeout shortened, no restore called), and
        # nothing vanishes between a pop and its bookkeeping (one Lua call, docs/RELIABILITY.md)
        after = [producer.send_task("fleet.ping", queue="ledger", priority=5).id for _ in range(50)]
        ids = queued + after

        def missing(ids: list[str] = ids) -> list[str]:
            return sorted(set(ids) - set(_done(own_redis.url, ids)))

        wait_for(lambda: not missing(), 60, interval=0.5, what="every message consumed")
        figures.append((len(ids), _returned(own_redis.url) - given_back, len(missing())))
    print(
        "\nredis restart: "
        + "; ".join(
            f"{sent} sent, {back} given back after the restart, {lost} vanished" for sent, back, lost in figures
        )
    )
    assert sum(lost for _sent, _back, lost in figures) == 0
    assert worker.process is not None and worker.process.poll() is None

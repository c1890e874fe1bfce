"""What the evaluator measures: the age of a queue's oldest message, hosts' memory, exported counters."""

from __future__ import annotations

import json
import time

import pytest
import redis

from beat.alert_rules import labels_of
from worker.alert_sampler import HOSTS_KEY, _hosts, exported, oldest_ages, publish_host

pytestmark = pytest.mark.integration


def _client(redis_server) -> redis.Redis:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/7")
    client.flushdb()
    return client


def test_the_oldest_waiting_message_is_found_at_the_tail_of_any_priority_list(redis_server) -> None:  # type: ignore[no-untyped-def]
    client = _client(redis_server)
    now = time.time()
    # Given ledger messages in two priority lists (kombu pushes on the left, pops on the right)
    for name, sent in (("ledger", now - 30), ("ledger:5", now - 400), ("ledger:5", now - 5)):
        client.lpush(name, json.dumps({"body": "", "headers": {"x_sent_at": sent}}))
    client.lpush("agents", b"not json at all")  # junk is no message: no age
    # Then the ledger's oldest waited 400 s, and the other queues have no age
    ages = oldest_ages(client, now)
    assert ages == {labels_of(queue="ledger"): pytest.approx(400, abs=1)}
    client.close()


def test_every_evaluating_host_reports_its_memory_and_a_silent_one_drops_out(redis_server) -> None:  # type: ignore[no-untyped-def]
    client = _client(redis_server)
    publish_host(client, "test")
    client.hset(HOSTS_KEY, "gone-host", json.dumps({"percent": 99.0, "at": time.time() - 3600, "process": "x"}))
    found = _hosts(client, fresh_s=90)
    assert len(found) == 1 and 0 < next(iter(found.values())) <= 100
    client.close()


def test_only_the_series_the_rules_read_are_parsed() -> None:
    text = (
        b"# HELP celery_task_failed_total Tasks that raised.\n# TYPE celery_task_failed_total counter\n"
        b'celery_task_failed_total{name="fleet.fail",queue="ledger",pid="7"} 3.0\n'
        b'celery_task_failed_total{name="fleet.fail",queue="ledger",pid="8"} 2.0\n'
        b'celery_task_runtime_seconds_bucket{le="0.1",name="fleet.fail",queue="ledger"} 5.0\n'
    )
    found = exported(lambda: text, frozenset({"celery_task_failed_total"}))
    # Per-process series are summed (the pid label dropped), other families skipped
    assert found == {"celery_task_failed_total": {labels_of(name="fleet.fail", queue="ledger"): 5.0}}


def test_a_queue_a_worker_was_seen_consuming_is_watched_after_the_worker_is_gone(redis_server) -> None:  # type: ignore[no-untyped-def]
    from worker.alert_sampler import consumers, known_queues

    client = _client(redis_server)
    # Given a worker seen consuming agents-reports2 once
    assert "agents-reports2" in known_queues(client, {"w1@host": ["agents-reports2"]})
    # When it is gone, the queue is still known, and counted as consumed by nobody
    queues = known_queues(client, {})
    assert {"agents", "ledger", "reports", "agents-reports2"} <= set(queues)
    assert consumers({}, queues)[labels_of(queue="agents-reports2")] == 0.0
    client.close()

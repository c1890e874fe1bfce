"""Ownership and heartbeats on a real Redis with real worker processes: a dead worker's messages come back by themselves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import fleet_config, stored_balances, stored_statuses
from tests.support import ROOT, WorkerProcess, run_agent, wait_for
from worker import ownership

pytestmark = [pytest.mark.integration, pytest.mark.patches]  # ownership is the fleet transport's own
LOST_AFTER_S = 3
BATCHES = 4
EVENTS = 1_000  # per batch


def _held_by(client: redis.Redis, node: str) -> dict[str, list[str]]:
    """Consumer -> tags it holds, for the consumers of one worker node."""
    out = {}
    for key in client.scan_iter(match=f"{ownership.HELD}{node}#*"):
        out[key.decode().removeprefix(ownership.HELD)] = [t.decode() for t in client.zrange(key, 0, -1)]
    return out


def test_messages_held_by_a_sigkilled_worker_run_on_another_within_lost_after(
    celery_app, database_url: str, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker with two processes holding ledger batches, and one more batch waiting
    prefix = f"own{uuid.uuid4().hex[:6]}"
    queue = f"ledger-{prefix}"
    env = {**fleet_config(session_dir / prefix, "ledger:\n  batch_chunk_size: 50\n"),
           "FLEET_WORKER_LOST_AFTER_S": str(LOST_AFTER_S)}  # fmt: skip
    now = datetime.now(UTC)
    streams = {f"{prefix}s{n}": [i["event"] for i in generate(EVENTS, 0, seed=n, now=now, prefix=f"{prefix}s{n}")]
               for n in range(BATCHES)}  # fmt: skip
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    victim = WorkerProcess(queues=queue, concurrency=2, name=f"{prefix}-a", env=env).start(celery_app)
    for stream in streams.values():
        celery_app.send_task("ledger.quick_run_batch", args=[stream], queue=queue, priority=5)
    try:
        held = wait_for(lambda: sum(len(t) for t in _held_by(client, victim.hostname).values()) >= 2 and
                        _held_by(client, victim.hostname), timeout=60, interval=0.02, what="two batches held")  # fmt: skip
    finally:
        # When it is SIGKILLed mid-batch (also when the wait failed: no worker outlives the test)
        victim.kill()
    killed_at = time.monotonic()
    # and another worker runs
    rescuer = WorkerProcess(queues=queue, name=f"{prefix}-b", env=env).start(celery_app)
    try:
        wait_for(lambda: not _held_by(client, victim.hostname), timeout=LOST_AFTER_S + 30, interval=0.1,
                 what="the dead worker's messages given back")  # fmt: skip
        recovered_s = time.monotonic() - killed_at
        wait_for(lambda: all(len(stored_statuses(database_url, p)) == EVENTS for p in streams), timeout=120,
                 interval=0.2, what="every event stored")  # fmt: skip
    finally:
        rescuer.stop()

    # Then its messages came back within lost_after + 10 s, and every event has the result of one clean run
    print(
        f"\nownership: {sum(map(len, held.values()))} messages held by the killed worker, back after {recovered_s:.1f} s"
    )
    assert recovered_s <= LOST_AFTER_S + 10
    for name, stream in streams.items():
        memory = MemoryStore()
        expected = {r["event_id"]: r["status"] for r in run(stream, memory, LedgerConfig(), now)}
        assert stored_statuses(database_url, name) == expected
        balances = stored_balances(database_url, name)
        assert {a: acc.balance for a, acc in memory.ledger.accounts.items()} == {a: balances.get(a) for a in
                                                                                 memory.ledger.accounts}  # fmt: skip
    # And the return was logged (category reliability) and counted for the day's report
    lines = [json.loads(line) for line in rescuer.log_path.read_text().splitlines() if line.startswith("{")]
    returned = [r for r in lines if r.get("category") == "reliability" and r.get("queue") == queue]
    assert returned and all(r["consumer"].startswith(f"{victim.hostname}#") for r in returned)
    counts = client.hgetall(ownership.restored_key())
    assert int(counts.get(f"{queue}\tworker_lost".encode(), 0)) >= 2
    assert not client.hexists(ownership.OWNER, held[next(iter(held))][0])


def test_a_worker_busy_with_a_task_longer_than_lost_after_is_never_taken_for_lost(
    celery_app, database_url: str, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker running one long batch with a two-second grace, and another live worker that judges.
    # One transaction per event makes the batch long without making its message large: receiving a message
    # pauses the worker's heartbeat thread (the GIL) for a time that grows with its size, up to 1 s for 10 MB
    # on a loaded 2-core machine, which a one-second grace did not survive (docs/RELIABILITY.md, Heartbeats).
    grace_s = 2
    prefix = f"busy{uuid.uuid4().hex[:6]}"
    env = {**fleet_config(session_dir / prefix, "ledger:\n  batch_chunk_size: 1\n"),
           "FLEET_WORKER_LOST_AFTER_S": str(grace_s)}  # fmt: skip
    stream = [i["event"] for i in generate(20 * EVENTS, 0, seed=3, now=datetime.now(UTC), prefix=prefix)]
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    busy = WorkerProcess(queues=f"ledger-{prefix}", name=f"{prefix}-a", env=env).start(celery_app)
    judge = WorkerProcess(queues=f"ledger-{prefix}-other", name=f"{prefix}-b", env=env).start(celery_app)
    try:
        started = time.monotonic()
        celery_app.send_task("ledger.quick_run_batch", args=[stream], queue=f"ledger-{prefix}", priority=5)
        wait_for(lambda: _held_by(client, busy.hostname), timeout=30, interval=0.02, what="the batch held")
        # When the batch runs for longer than the grace
        released, silences = [], []
        while len(stored_statuses(database_url, prefix)) < len(stream) and time.monotonic() - started < 300:
            released.append(not _held_by(client, busy.hostname))
            silences.extend(_silences(client, busy.hostname))
            time.sleep(0.2)
        ran_s = time.monotonic() - started
    finally:
        busy.stop()
        judge.stop()
    # Then its message stayed held by it until it finished: never given back, run once
    print(f"\nbusy worker: one batch ran {ran_s:.1f} s with a {grace_s} s grace, held throughout; "
          f"longest heartbeat silence seen {max(silences, default=0):.2f} s")  # fmt: skip
    assert ran_s > grace_s, "the batch must outlast the grace for this test to mean anything"
    assert len(stored_statuses(database_url, prefix)) == len(stream)
    assert not any(released[:-2])  # only once it was acknowledged, at the end
    assert not client.hget(ownership.restored_key(), f"ledger-{prefix}\tworker_lost")


def _silences(client: redis.Redis, node: str) -> list[float]:
    """Seconds since the last heartbeat of each consumer of one worker node, by Redis's clock."""
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    return [now - beat for name, beat in client.zrange(ownership.CONSUMERS, 0, -1, withscores=True)
            if name.decode().startswith(f"{node}#")]  # fmt: skip


def test_agent_status_shows_orphaned_messages_and_agent_recover_gives_them_back_at_once(
    celery_app, database_url: str, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker that holds two ledger batches when it is SIGKILLed, with a long grace before it counts as lost
    prefix = f"rec{uuid.uuid4().hex[:6]}"
    queue = f"ledger-{prefix}"
    env = {
        **fleet_config(session_dir / prefix, "ledger:\n  batch_chunk_size: 50\n"),
        "FLEET_WORKER_LOST_AFTER_S": "600",
    }
    now = datetime.now(UTC)
    streams = {f"{prefix}s{n}": [i["event"] for i in generate(EVENTS, 0, seed=n, now=now, prefix=f"{prefix}s{n}")]
               for n in range(3)}  # fmt: skip
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    victim = WorkerProcess(queues=queue, concurrency=2, name=f"{prefix}-a", env=env).start(celery_app)
    try:
        for stream in streams.values():
            celery_app.send_task("ledger.quick_run_batch", args=[stream], queue=queue, priority=5)
        wait_for(lambda: sum(len(t) for t in _held_by(client, victim.hostname).values()) >= 2, timeout=60, interval=0.02,
                 what="two batches held")  # fmt: skip
    finally:
        victim.kill()
    time.sleep(2.5)

    # When an operator asks for the status with a 2 s grace, then recovers the worker by name
    status = run_agent("status", "--json", env={"FLEET_WORKER_LOST_AFTER_S": "2"})
    report = json.loads(status.stdout)
    refused = run_agent("recover", "--worker", victim.hostname, "--after", "60")
    recovered = run_agent("recover", "--worker", victim.hostname, "--after", "2")

    # Then the status names the dead worker's process and its messages with their age
    orphaned = [c for c in report["held"]["orphaned"] if c["worker"] == victim.hostname]
    assert orphaned and sum(len(c["messages"]) for c in orphaned) >= 2
    assert all(m["list"] == f"{queue}:5" and m["age_s"] >= 2 for c in orphaned for m in c["messages"])
    # And recover refuses a worker that may be alive, then gives the messages back at once
    assert refused.returncode == 2 and "looks alive" in refused.stderr
    assert recovered.returncode == 0, recovered.stderr
    assert "messages given back" in recovered.stdout and not _held_by(client, victim.hostname)
    # And another worker runs them: every event stored once
    rescuer = WorkerProcess(queues=queue, name=f"{prefix}-b", env=env).start(celery_app)
    try:
        wait_for(lambda: all(len(stored_statuses(database_url, p)) == EVENTS for p in streams), timeout=120,
                 interval=0.2, what="every event stored")  # fmt: skip
    finally:
        rescuer.stop()
    assert int(client.hget(ownership.restored_key(), f"{queue}\toperator") or 0) >= 2


# A consumer that dies (os._exit) right after the fetch's reply arrived, before kombu or Celery saw the message: the
# instant where kombu's BRPOP lost it.
_DIES_AFTER_FETCH = """
import os, sys
from kombu import Queue
from worker import transport
from worker.transport import FleetConnection

def die(self, reply):
    os._exit(3)

transport.Channel._deliver_fetched = die
connection = FleetConnection(sys.argv[1], transport_options={"fleet_worker_lost_after_s": 1})
connection.SimpleQueue(Queue(sys.argv[2], routing_key=sys.argv[2])).get(timeout=5)
"""


def test_a_consumer_dead_right_after_the_fetch_leaves_its_message_held_and_it_comes_back_once(redis_server) -> None:  # type: ignore[no-untyped-def]
    from kombu import Queue

    from worker.transport import FleetConnection

    url = redis_server.url.rsplit("/", 1)[0] + "/9"
    name = f"dies-{uuid.uuid4().hex[:8]}"
    with FleetConnection(url) as connection, connection.SimpleQueue(Queue(name, routing_key=name)) as simple:
        simple.put({"n": 1})
    # Given a consumer killed between the fetch and the delivery
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_DIES_AFTER_FETCH), url, name], cwd=ROOT,
                          capture_output=True, timeout=60)  # fmt: skip
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    client = redis.Redis.from_url(url)
    assert client.llen(name) == 0 and client.hlen(ownership.OWNER) == 1  # taken, and recorded as held
    # When a live process looks for lost consumers, twice (as two workers would)
    time.sleep(1.1)
    first = ownership.recover(client, sep=":", lost_after_s=1, reason="worker_lost")
    second = ownership.recover(client, sep=":", lost_after_s=1, reason="worker_lost")
    # Then the message is back in its list once, marked redelivered when taken again
    assert sum(first.values()) == 1 and sum(second.values()) == 0
    with FleetConnection(url) as connection, connection.SimpleQueue(Queue(name, routing_key=name)) as simple:
        message = simple.get(timeout=5)
        message.ack()
        assert message.payload == {"n": 1} and message.delivery_info.get("redelivered") is True
        with pytest.raises(simple.Empty):
            simple.get(timeout=0.5)
    client.flushdb()

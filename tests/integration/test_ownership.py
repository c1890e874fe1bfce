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
from typing import Any

import pytest
import redis

from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import fleet_config, stored_balances, stored_statuses
from tests.support import ROOT, WorkerProcess, wait_for
from worker import ownership

pytestmark = pytest.mark.integration
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
    held = wait_for(lambda: sum(len(t) for t in _held_by(client, victim.hostname).values()) >= 2 and
                    _held_by(client, victim.hostname), timeout=60, interval=0.02, what="two batches held")  # fmt: skip

    # When it is SIGKILLed mid-batch and another worker runs
    victim.kill()
    killed_at = time.monotonic()
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
    returned = [r for r in lines if r.get("category") == "reliability" and "returned" in r.get("message", "")]
    assert returned and all(victim.hostname in r["message"] for r in returned)
    counts = client.hgetall(ownership.restored_key())
    assert int(counts.get(f"{queue}\tworker_lost".encode(), 0)) >= 2
    assert not client.hexists(ownership.OWNER, held[next(iter(held))][0])


# A consumer forked again and again, each SIGKILLed at a random instant of its get/ack loop; it notes a message's id
# (O_APPEND, one line) once it has it in hand, before acknowledging.
_KILLER = """
import json, os, random, signal, sys, time
from kombu import Queue
from worker.transport import FleetConnection

url, name, kills, seen_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
random.seed(7)
held_at_kill = 0
for _ in range(kills):
    pid = os.fork()
    if pid == 0:
        connection = FleetConnection(url, transport_options={"fleet_worker_lost_after_s": 1})
        queue = connection.SimpleQueue(Queue(name, routing_key=name))
        seen = os.open(seen_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        while True:
            message = queue.get(timeout=5)
            os.write(seen, (message.payload["id"] + "\\n").encode())
            message.ack()
    time.sleep(random.uniform(0.03, 0.12))  # past the child's connect: most kills land in the get/ack loop
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(json.dumps({"kills": kills}))
"""


def test_consumers_killed_at_random_instants_of_the_fetch_lose_no_message(redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Given a queue of messages with known ids
    import os

    from kombu import Queue

    from worker.transport import FleetConnection

    kills = int(os.environ.get("FLEET_TEST_FETCH_KILLS", "300"))
    url = redis_server.url.rsplit("/", 1)[0] + "/8"
    name = f"kills-{uuid.uuid4().hex[:8]}"
    ids = [f"m{n}" for n in range(kills * 20)]
    with FleetConnection(url) as connection, connection.SimpleQueue(Queue(name, routing_key=name)) as simple:
        for message_id in ids:
            simple.put({"id": message_id})
    # When consumers take them one by one and are SIGKILLed at random instants, `kills` times
    seen_path = tmp_path / "seen"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_KILLER), url, name, str(kills), str(seen_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = redis.Redis.from_url(url)
    held = sum(client.zcard(k) for k in client.scan_iter(match=f"{ownership.HELD}*"))
    # And the dead consumers' messages are given back (what a live worker does once they count as lost)
    time.sleep(1.1)
    returned = ownership.recover(client, sep=":", lost_after_s=1, reason="worker_lost")
    left: list[Any] = []
    with FleetConnection(url) as connection, connection.SimpleQueue(Queue(name, routing_key=name)) as simple:
        while True:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                break
            left.append(message.payload["id"])
            message.ack()
    # Then every message was either in a consumer's hands or is still in the queue: none vanished
    seen = seen_path.read_text().split()
    vanished = sorted(set(ids) - set(seen) - set(left))
    print(f"\nfetch kills: {kills} consumers killed, {held} messages held at the end, {sum(returned.values())} given back,"
          f" {len(set(seen))} handled, {len(seen) - len(set(seen))} handled again, {len(left)} left, {len(vanished)} vanished")  # fmt: skip
    assert vanished == []
    assert client.hlen("unacked") == 0 and client.hlen(ownership.OWNER) == 0
    client.flushdb()

"""Worker processes SIGKILLed at random instants of their fetch loop, a thousand times: no message vanishes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support import ROOT
from worker import ownership

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.patches]
# 1,000 kills take about 90 s on a loaded 2-core machine; FLEET_TEST_FETCH_KILLS scales it (the figure is printed).
KILLS = int(os.environ.get("FLEET_TEST_FETCH_KILLS", "1000"))


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
    from kombu import Queue

    from worker.transport import FleetConnection

    kills = KILLS
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
    returned: Counter[tuple[str, str]] = Counter()
    for _ in range(kills // 100 + 2):  # a live worker's recovery ticks: each looks at the 100 longest-silent consumers
        returned += ownership.recover(client, sep=":", lost_after_s=1, reason="worker_lost")
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

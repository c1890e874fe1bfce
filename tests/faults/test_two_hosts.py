"""Two "hosts" as Linux network namespaces, each with a worker, against Redis and the database in the root namespace:
a host whose every process dies, and a host cut off for a while, hand their messages to the other host."""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import fleet_config, stored_balances, stored_statuses
from tests.support import WorkerProcess, wait_for
from worker import ownership
from worker.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.patches, pytest.mark.timeout(600)]
LOST_AFTER_S = 5
BATCHES = 6
EVENTS = 1_000  # per batch
PARTITION_S = 60


def _ip(*args: str, ns: str | None = None) -> None:
    command = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    """A network namespace joined to the root namespace by a veth pair: `address` there, `gateway` here."""

    ns: str
    veth: str
    gateway: str
    address: str

    def create(self) -> Host:
        """The namespace, its link up, its loopback up."""
        subprocess.run(["ip", "netns", "add", self.ns], check=True, capture_output=True, timeout=30)
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "p")
        _ip("link", "set", self.veth + "p", "netns", self.ns)
        _ip("addr", "add", f"{self.gateway}/30", "dev", self.veth)
        _ip("link", "set", self.veth, "up")
        _ip("addr", "add", f"{self.address}/30", "dev", self.veth + "p", ns=self.ns)
        _ip("link", "set", self.veth + "p", "up", ns=self.ns)
        _ip("link", "set", "lo", "up", ns=self.ns)
        return self

    def link(self, up: bool) -> None:
        """Cut or restore the host's only link."""
        _ip("link", "set", self.veth, "up" if up else "down")

    def kill_everything(self) -> list[int]:
        """SIGKILL every process of the host (as a lost machine)."""
        pids = [int(p) for p in subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True,
                                               timeout=30).stdout.split()]  # fmt: skip
        for pid in pids:
            try:
                import os

                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def remove(self) -> None:
        """Kill what is left, delete the link and the namespace."""
        self.kill_everything()
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)

    def worker(self, broker: str, name: str, queue: str, env: dict[str, str], folder: Path) -> WorkerProcess:
        """A worker process inside the namespace, reaching Redis through the link."""
        worker = WorkerProcess(queues=queue, concurrency=2, name=name, log_path=folder / f"{name}.out",
                               env={**env, "FLEET_BROKER_URL": broker, "FLEET_RESULT_BACKEND": broker})  # fmt: skip
        worker.command[:0] = ["ip", "netns", "exec", self.ns]
        return worker


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[RedisServer, list[Host]]]:
    """A private Redis in the root namespace listening on both links, and two hosts; skipped where ip netns is refused."""
    tag = uuid.uuid4().hex[:5]
    probe = subprocess.run(["ip", "netns", "add", f"fleet-probe-{tag}"], capture_output=True, text=True)
    if probe.returncode != 0:
        reason = f"ip netns refused here: {probe.stderr.strip()}"
        print(f"\ntwo hosts: skipped, {reason}")
        pytest.skip(reason)
    subprocess.run(["ip", "netns", "del", f"fleet-probe-{tag}"], capture_output=True)
    subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 250)}"
    made = [Host(f"fleet-{tag}-{n}", f"fl{tag}{n}", f"{subnet}.{4 * n + 1}", f"{subnet}.{4 * n + 2}") for n in range(2)]
    # A password: Redis's protected mode refuses clients from other interfaces without one.
    server = RedisServer(port=free_port(), data_dir=tmp_path / "redis", password=uuid.uuid4().hex).start()
    try:
        for host in made:
            host.create()
        redis.Redis.from_url(server.url).config_set("bind", " ".join(["127.0.0.1", *(h.gateway for h in made)]))
        yield server, made
    finally:
        for host in made:
            host.remove()
        server.stop()


def _producer(url: str) -> Celery:
    import celeryconfig

    app = Celery(broker=url, backend=url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"],
                    broker_transport_options=celeryconfig.broker_transport_options)  # fmt: skip
    return app


def _held(client: redis.Redis, node: str) -> int:
    return sum(int(client.zcard(k)) for k in client.scan_iter(match=f"{ownership.HELD}{node}#*"))


def _setup(server: RedisServer, made: list[Host], folder: Path) -> tuple[Any, ...]:
    prefix = f"hosts{uuid.uuid4().hex[:6]}"
    queue = f"ledger-{prefix}"
    env = {**fleet_config(folder / prefix, "ledger:\n  batch_chunk_size: 50\n"),
           "FLEET_WORKER_LOST_AFTER_S": str(LOST_AFTER_S)}  # fmt: skip
    workers = [
        host.worker(server.url.replace("127.0.0.1", host.gateway), f"{prefix}-{n}", queue, env, folder)
        for n, host in enumerate(made)
    ]
    producer = _producer(server.url)
    for worker in workers:
        # The producer's transport options: a control ping's reply is bound with the fleet's separator too.
        worker.start(producer)
    now = datetime.now(UTC)
    streams = {f"{prefix}s{n}": [i["event"] for i in generate(EVENTS, 0, seed=n, now=now, prefix=f"{prefix}s{n}")]
               for n in range(BATCHES)}  # fmt: skip
    for stream in streams.values():
        producer.send_task("ledger.quick_run_batch", args=[stream], queue=queue, priority=5)
    return prefix, queue, workers, streams, now


def _check_exact(database_url: str, streams: dict[str, list[dict[str, Any]]], now: datetime) -> int:
    """Every event's stored status and every balance equal a clean run's; the number of events checked."""
    for name, stream in streams.items():
        memory = MemoryStore()
        expected = {r["event_id"]: r["status"] for r in run(stream, memory, LedgerConfig(), now)}
        assert stored_statuses(database_url, name) == expected
        balances = stored_balances(database_url, name)
        assert {a: acc.balance for a, acc in memory.ledger.accounts.items()} == {
            a: balances.get(a) for a in memory.ledger.accounts
        }
    return sum(map(len, streams.values()))


def test_a_host_whose_every_process_dies_has_its_messages_run_on_the_other_host(
    hosts: tuple[RedisServer, list[Host]], database_url: str, tmp_path: Path
) -> None:
    server, made = hosts
    _prefix, _queue, workers, streams, now = _setup(server, made, tmp_path)
    client = redis.Redis.from_url(server.url)
    try:
        # Given host 0 holding batches
        wait_for(lambda: _held(client, workers[0].hostname) >= 1, timeout=60, interval=0.02, what="host 0 holding")
        # When every process of host 0 is SIGKILLed
        killed = made[0].kill_everything()
        killed_at = time.monotonic()
        wait_for(lambda: _held(client, workers[0].hostname) == 0, timeout=LOST_AFTER_S + 30, interval=0.1,
                 what="host 0's messages given back")  # fmt: skip
        back_s = time.monotonic() - killed_at
        wait_for(lambda: all(len(stored_statuses(database_url, p)) == EVENTS for p in streams), timeout=180,
                 interval=0.5, what="every event stored")  # fmt: skip
    finally:
        for worker in workers:
            worker.stop()
    # Then host 1 ran them within lost_after + 10 s, and every event was applied once
    checked = _check_exact(database_url, streams, now)
    print(
        f"\ntwo hosts, host lost: {len(killed)} processes killed, its messages back after {back_s:.1f} s, {checked} events exact"
    )
    assert back_s <= LOST_AFTER_S + 10


def test_a_host_cut_off_for_a_minute_hands_over_and_its_late_acks_apply_nothing_twice(
    hosts: tuple[RedisServer, list[Host]], database_url: str, tmp_path: Path
) -> None:
    server, made = hosts
    _prefix, _queue, workers, streams, now = _setup(server, made, tmp_path)
    client = redis.Redis.from_url(server.url)
    try:
        # Given host 0 holding batches
        wait_for(lambda: _held(client, workers[0].hostname) >= 1, timeout=60, interval=0.02, what="host 0 holding")
        # When its link is cut for a minute mid-stream, then restored
        made[0].link(False)
        cut_at = time.monotonic()
        wait_for(lambda: _held(client, workers[0].hostname) == 0, timeout=LOST_AFTER_S + 30, interval=0.1,
                 what="host 0's messages taken over")  # fmt: skip
        taken_s = time.monotonic() - cut_at
        time.sleep(max(0.0, PARTITION_S - (time.monotonic() - cut_at)))
        made[0].link(True)
        wait_for(lambda: all(len(stored_statuses(database_url, p)) == EVENTS for p in streams), timeout=180,
                 interval=0.5, what="every event stored")  # fmt: skip
        time.sleep(LOST_AFTER_S)  # host 0 reconnects, acknowledges late and beats again
    finally:
        for worker in workers:
            worker.stop()
    # Then host 1 took its messages over, and nothing was applied twice once the link came back
    checked = _check_exact(database_url, streams, now)
    print(f"\ntwo hosts, partition: messages taken over {taken_s:.1f} s after the cut, {checked} events exact")
    assert taken_s <= LOST_AFTER_S + 10
    assert client.hlen("unacked") == 0 or all(
        owner for owner in client.hmget(ownership.OWNER, list(client.hkeys("unacked")))
    )

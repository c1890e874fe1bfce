"""Redis Sentinel, as operators run it: a master, a replica, three Sentinels; the master dies mid-stream."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel
from sqlalchemy import create_engine, text

from tests.processes import AGENT, ROOT, WorkerProcess, documented_env, wait_for
from worker.redis_server import find_binary, free_port

pytestmark = [pytest.mark.faults, pytest.mark.slow]

MASTER = "fleetmaster"
EVENTS = 2000


@dataclass
class RedisHA:
    """A master, its replica and three Sentinels, each its own redis-server process on a free port."""

    root: Path
    master_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _start(self, name: str, config: str, *extra: str) -> None:
        folder = self.root / name
        folder.mkdir(parents=True)
        (folder / "redis.conf").write_text(config)
        command = [find_binary(), str(folder / "redis.conf"), *extra]
        with (folder / "out.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> RedisHA:
        base = "bind 127.0.0.1\nsave ''\nappendonly no\n"
        self._start("master", f"port {self.master_port}\n{base}")
        self._start("replica", f"port {self.replica_port}\n{base}replicaof 127.0.0.1 {self.master_port}\n")
        wait_for(lambda: self.info("replica").get("master_link_status") == "up", timeout=30, what="replication")
        for n, port in enumerate(self.sentinel_ports):
            config = (
                f"port {port}\nbind 127.0.0.1\nsentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 5000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self._start(f"sentinel{n}", config, "--sentinel")
        wait_for(self._sentinels_agree, timeout=30, what="three sentinels that see the replica")
        return self

    def info(self, name: str) -> dict[str, object]:
        port = self.master_port if name == "master" else self.replica_port
        try:
            return dict(redis.Redis(port=port, socket_timeout=1).info("replication"))
        except redis.RedisError:
            return {}

    def _sentinels_agree(self) -> bool:
        try:
            for port in self.sentinel_ports:
                client = redis.Redis(port=port, socket_timeout=1)
                if int(client.sentinel_master(MASTER)["num-other-sentinels"]) < 2 or not client.sentinel_slaves(MASTER):
                    return False
        except (redis.RedisError, KeyError):
            return False
        return True

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports) + "/0"

    def current_master(self) -> tuple[str, int] | None:
        """The master the Sentinels name now; None while they see it down and have not promoted another."""
        try:
            found: tuple[str, int] = Sentinel(
                [("127.0.0.1", p) for p in self.sentinel_ports], socket_timeout=1
            ).discover_master(MASTER)
        except redis.RedisError:
            return None
        return found

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def redis_ha(tmp_path: Path) -> Iterator[RedisHA]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the Sentinel test (apt-get install redis-server)")
    ha = RedisHA(tmp_path / "redis").start()
    yield ha
    ha.stop()


def _agent(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _results(database: str) -> int:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM ledger_events")).scalar_one())
    finally:
        engine.dispose()


def test_the_master_dies_mid_stream_and_after_failover_every_event_has_exactly_one_result(
    redis_ha: RedisHA, tmp_path: Path
) -> None:
    # Given a fleet whose broker and results are the master that three Sentinels name
    database = f"sqlite:///{tmp_path / 'fleet.db'}"
    env = documented_env(
        broker_url=redis_ha.url,
        sentinel_master=MASTER,
        database_url=database,
        log_dir=str(tmp_path / "log"),
        report_dir=str(tmp_path / "reports"),
    )
    assert _agent(env, "db", "upgrade").returncode == 0
    events = tmp_path / "events.jsonl"
    generated = _agent(env, "ledger", "generate", "--events", str(EVENTS), "--faults", "0", "--seed", "11")
    events.write_text(generated.stdout)
    worker = WorkerProcess("ledger", 2, name="ledger", environ=env, log_path=tmp_path / "worker.out").start()
    try:
        # (`agent status` reaches the broker through the Sentinels and sees the worker)
        status = wait_for(lambda: (r := _agent(env, "status")).returncode == 0 and r, timeout=120, interval=1)
        assert "sentinel://" in status.stdout and "ledger@" in status.stdout
        # When events stream in and the master is killed while they do
        submit = subprocess.Popen(
            [AGENT, "ledger", "submit", str(events), "--json"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for(lambda: _results(database) >= EVENTS // 10, timeout=120, interval=0.1, what="the stream under way")
        old = redis_ha.current_master()
        # What the replica had not yet received when the master died: the writes asynchronous replication loses.
        lag = int(str(redis_ha.info("master").get("master_repl_offset", 0))) - int(
            str(redis_ha.info("replica").get("slave_repl_offset", 0))
        )
        redis_ha.processes["master"].send_signal(signal.SIGKILL)
        print(f"replication lag when the master was killed: {max(0, lag)} bytes")
        killed = time.monotonic()
        # Then the Sentinels promote the replica
        wait_for(lambda: redis_ha.current_master() not in (None, old), timeout=60, interval=0.2, what="the failover")
        print(f"failover: new master after {time.monotonic() - killed:.1f} s")
        first_out, first_err = submit.communicate(timeout=300)
        print(
            f"first submit: exit {submit.returncode} {first_out.decode().strip()} {first_err.decode().strip()[-300:]}"
        )
        # And what the worker applied before and after the failover is counted once
        settled = wait_for(_steady(database), timeout=180, interval=1.0, what="the worker to settle")
        lost = EVENTS - settled
        print(f"events without a result after the failover (sent, then lost or refused mid-failover): {lost}")
        # When the producer sends the whole stream again (what a producer does after a broker failure)
        again = _agent(env, "ledger", "submit", str(events), "--wait", "--json", "--timeout", "120")
        # Then every event has exactly one result: none lost, none applied twice
        assert again.returncode in (0, 1), again.stderr
        assert _results(database) == EVENTS
        outcome = json.loads(again.stdout)
        assert outcome.get("rejected", []) == [] or all("duplicate" in str(r) for r in outcome["rejected"])
    finally:
        if "submit" in locals() and submit.poll() is None:
            submit.kill()
            submit.communicate()
        worker.stop()


def _steady(database: str):  # type: ignore[no-untyped-def]
    seen: list[int] = []

    def check() -> int | None:
        seen.append(_results(database))
        return seen[-1] if len(seen) >= 5 and len(set(seen[-5:])) == 1 else None

    return check

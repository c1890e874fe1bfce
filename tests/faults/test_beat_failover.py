"""Two beats, as an operator runs them on two hosts: one schedules, the other takes over when it dies."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from tests.processes import BeatProcess, documented_env, wait_for
from worker.redis_server import RedisServer

pytestmark = [pytest.mark.faults, pytest.mark.slow]

LOCK_TIMEOUT_S = 6
# The beats get their own Redis database: their lock and entries never meet another test's beat.
DB = 7


def _sent(client: redis.Redis) -> Counter[str]:
    """Task names of every message waiting on the fleet's queues (no worker consumes this database)."""
    names: Counter[str] = Counter()
    for key in client.scan_iter(match="*"):
        name = key.decode()
        if name.split(":")[0] not in {"agents", "ledger", "reports"} or client.type(key) != b"list":
            continue
        for raw in client.lrange(key, 0, -1):
            names[json.loads(raw)["headers"]["task"]] += 1
    return names


def test_a_standby_beat_takes_over_within_the_lock_ttl_and_nothing_is_sent_twice(
    redis_server: RedisServer, database_url: str, session_dir: Path, tmp_path: Path
) -> None:
    # Given a report time that falls after the takeover, a sweep every second and no offline window
    now = datetime.now(UTC)
    report_at = (now + timedelta(seconds=90)).replace(second=0, microsecond=0)
    config = tmp_path / "fleet.yaml"
    config.write_text(
        f"reports:\n  report_time: '{report_at:%H:%M}'\n  offline_window: null\nagents:\n  sweep_every_s: 1\n"
    )
    client = redis.Redis(port=redis_server.port, db=DB)
    client.flushdb()
    env = documented_env(
        broker_url=f"redis://127.0.0.1:{redis_server.port}/{DB}",
        database_url=database_url,
        config=str(config),
        log_dir=str(tmp_path / "log"),
        report_dir=str(tmp_path / "reports"),
        beat_lock_timeout_s=str(LOCK_TIMEOUT_S),
    )
    # When two `celery -A worker beat` processes start, the second while the first holds the lock
    first = BeatProcess(env, tmp_path / "beat-1.out").start()
    second = None
    try:
        wait_for(lambda: _sent(client)["agents.sweep"] >= 2, timeout=60, interval=0.2, what="the first beat's sweeps")
        second = BeatProcess(env, tmp_path / "beat-2.out").start()
        time.sleep(3)
        # Then one sweep goes out per second, not two (the standby waits for the lock)
        before = _sent(client)["agents.sweep"]
        time.sleep(4)
        assert _sent(client)["agents.sweep"] - before <= 5
        # When the active beat is killed outright (no chance to release its lock)
        first.kill()
        killed_at = time.monotonic()
        at_kill = _sent(client)["agents.sweep"]
        wait_for(lambda: _sent(client)["agents.sweep"] > at_kill, timeout=LOCK_TIMEOUT_S + 15, interval=0.1)
        takeover_s = time.monotonic() - killed_at
        print(f"standby beat took over {takeover_s:.1f} s after the kill (lock TTL {LOCK_TIMEOUT_S} s)")
        # Then the standby takes over within the lock's TTL plus one loop
        assert takeover_s <= LOCK_TIMEOUT_S + 10
        assert "Acquired lock" in second.output()
        # And the daily report, due after the kill, is sent once, by the survivor
        wait_for(
            lambda: _sent(client)["reports.daily_status"] >= 1,
            timeout=(report_at - datetime.now(UTC)).total_seconds() + 30,
            interval=0.5,
            what="the daily report",
        )
        time.sleep(2)
        sent = _sent(client)
        assert sent["reports.daily_status"] == 1
        # And metrics collection kept its pace: at most one per minute that passed
        minutes = int((datetime.now(UTC) - now).total_seconds() // 60) + 1
        assert 1 <= sent["reports.collect_metrics"] <= minutes
    finally:
        for beat in (first, second):
            if beat is not None:
                beat.stop(20)
    # And a beat stopped cleanly releases its lock at once
    assert client.get("fleet:beat::lock") is None

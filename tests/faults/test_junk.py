"""Junk of every kind on every priority list of every queue while ledger events flow: each kept, none lost, no exit.

Junk is what kombu's transport cannot read (worker/envelope.py) and task messages Celery cannot read
(worker/task_message.py); both used to raise in a worker's event loop, which exited with the message lost.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from sqlalchemy import select

from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import fleet_config, stored_statuses
from tests.junk import HUGE, JUNK, KINDS, broken_tasks, generated
from tests.support import WorkerProcess, wait_for
from worker.constants import PRIORITY_STEPS, QUEUES
from worker.db import get_engine
from worker.dead_letters import RAW_BYTES
from worker.models.core import DeadLetter

# Junk kept as a dead letter is the fleet transport's doing: kombu's own raises it (docs/PATCHES.md).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.patches, pytest.mark.timeout(900)]
EVENTS = 600
BATCH = 30
GENERATED = 300  # hypothesis junk: arbitrary bytes, arbitrary JSON, envelopes with a field of the wrong type


def _pids(worker: WorkerProcess) -> set[int]:
    """The worker's main process and its pool processes, once it is ready (another worker may have answered the
    ping that `start` waits for)."""
    assert worker.process is not None
    wait_for(lambda: f"{worker.hostname} ready." in worker.log_path.read_text(errors="replace"), 90, 0.2)
    main = psutil.Process(worker.process.pid)
    return {main.pid, *(child.pid for child in main.children(recursive=True))}


def _kept(database_url: str, sources: list[str]) -> list[Any]:
    """Dead letters of junk popped from these lists."""
    table = DeadLetter.__table__
    columns = (table.c.source, table.c.reason, table.c.raw, table.c.raw_size)
    with get_engine(database_url).connect() as connection:
        return list(connection.execute(select(*columns).where(table.c.source.in_(sources))))


def _refused_tasks(database_url: str, marker: str) -> list[str]:
    """Reasons of the dead letters of task messages holding the marker (the consumer's refusals)."""
    table = DeadLetter.__table__
    with get_engine(database_url).connect() as connection:
        return list(connection.scalars(select(table.c.reason).where(table.c.body_excerpt.contains(marker))))


class Pusher:
    """LPUSHes junk onto the queues' lists from a thread while the test sends events."""

    def __init__(self, url: str, junk: list[tuple[str, bytes]]) -> None:
        self.client = redis.Redis.from_url(url)
        self.junk = junk
        self.thread = threading.Thread(target=self._push, daemon=True)

    def _push(self) -> None:
        for key, raw in self.junk:
            self.client.lpush(key, raw)

    def huge(self, keys: list[str]) -> None:
        """The oversized kind, one list at a time: thirty at once would hold a gigabyte in Redis."""
        for key in keys:
            self.client.lpush(key, HUGE[1])
            wait_for(lambda key=key: self.client.llen(key) == 0, 60, 0.05, what=f"the huge junk on {key} taken")


def test_junk_on_every_priority_list_is_kept_as_dead_letters_while_every_event_gets_its_result(
    celery_app: Any, database_url: str, session_dir: Path
) -> None:
    # Given two workers on the three queues, and junk of every kind for each of their thirty priority lists
    prefix = f"junk{uuid.uuid4().hex[:6]}"
    queues = [f"{queue}-{prefix}" for queue in QUEUES]
    sep = celery_app.conf.broker_transport_options["sep"]
    lists = [queue if p == 0 else f"{queue}{sep}{p}" for queue in queues for p in PRIORITY_STEPS]
    env = fleet_config(session_dir / prefix, "")
    workers = [WorkerProcess(queues=",".join(queues), name=f"{prefix}-{n}", env=env).start(celery_app) for n in "ab"]
    pids = [_pids(w) for w in workers]
    junk = [(key, raw) for key in lists for _reason, raw in KINDS.values()]
    junk += [(lists[i % len(lists)], raw) for i, raw in enumerate(generated(JUNK, GENERATED))]
    marker = f"{prefix}-task"
    tasks = [(lists[i % len(lists)], raw) for i, raw in enumerate(generated(broken_tasks(marker), len(lists) * 2))]
    random.Random(7).shuffle(junk)
    stream = [item["event"] for item in generate(EVENTS, 0, seed=18, now=datetime.now(UTC), prefix=prefix)]
    pusher = Pusher(celery_app.conf.broker_url, [*junk, *tasks])
    ledger = f"ledger-{prefix}"
    try:
        # When the junk is pushed while the events go, in order, at every priority, through the same lists
        pusher.thread.start()
        for number, start in enumerate(range(0, EVENTS, BATCH)):
            priority = PRIORITY_STEPS[number % len(PRIORITY_STEPS)]
            batch = stream[start : start + BATCH]
            sent = celery_app.send_task("ledger.quick_run_batch", args=[batch], queue=ledger, priority=priority)
            sent.get(timeout=120)
        pusher.thread.join(120)
        pusher.huge(lists)
        wait_for(lambda: len(_kept(database_url, lists)) >= len(junk) + len(lists), 120, 0.5, what="every dead letter")
        wait_for(lambda: len(_refused_tasks(database_url, marker)) >= len(tasks), 60, 0.5, what="every task refused")
        after = [_pids(w) for w in workers]
    finally:
        for worker in workers:
            worker.stop()

    # Then every event has the result a clean in-order run gives
    expected = {r["event_id"]: r["status"] for r in run(stream, MemoryStore(), LedgerConfig(), datetime.now(UTC))}
    assert stored_statuses(database_url, prefix) == expected
    # And every junk message is one dead letter, with the list it came from and its bytes (bounded)
    kept = _kept(database_url, lists)
    pushed = [*junk, *((key, HUGE[1]) for key in lists)]
    assert Counter((r.source, r.raw, r.raw_size) for r in kept) == Counter(
        (key, raw[:RAW_BYTES], len(raw)) for key, raw in pushed
    )
    # And each listed kind has its documented reason
    reasons = {raw[:RAW_BYTES]: reason for reason, raw in [*KINDS.values(), HUGE]}
    wrong = [(r.source, r.reason) for r in kept if r.raw in reasons and r.reason != reasons[r.raw]]
    assert wrong == []
    # And every task message Celery could not read is one dead letter of the consumer's
    assert _refused_tasks(database_url, marker) == ["invalid_message"] * len(tasks)
    # And no worker process exited or was replaced, and nothing is left in the lists
    assert after == pids
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    assert sum(int(client.llen(key)) for key in lists) == 0

"""Ledger figures: one event per task vs the bare no-op, batch events/s, a critical event's wait.

Self-contained (a private Redis, a scratch SQLite or FLEET_TEST_POSTGRES_URL, worker subprocesses), so it
runs before bench/common.py lands on main: `python -m bench.ledger [--events N] [--tasks N] [--reps N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
BARE_BROKER = os.environ.get("FLEET_BROKER_URL", "redis://127.0.0.1:6379/0")
# The bare baseline: the same broker, transport options, serializer, acks and prefetch, a task doing nothing.
bare_app = Celery("bare", broker=BARE_BROKER, backend=BARE_BROKER)
bare_app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue="bare",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_transport_options={"queue_order_strategy": "priority", "priority_steps": list(range(10)), "sep": ":"},
)


@bare_app.task(name="bare.noop")
def noop(*_: Any) -> None:
    """Do nothing."""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Worker:
    """A `celery worker` subprocess, stopped with SIGTERM."""

    def __init__(self, app: str, queues: str, concurrency: int, log: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-n",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        ]
        self.out = log.open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self.out, stderr=self.out)

    def stop(self) -> None:
        """Warm shutdown."""
        self.process.terminate()
        self.process.wait(60)
        self.out.close()


def _ready(app: Celery, queue: str, name: str = "fleet.ping") -> None:
    app.send_task(name, queue=queue, priority=0).get(timeout=120)


def throughput(app: Celery, name: str, queue: str, bodies: list[Any]) -> float:
    """Tasks per second from the first send until every result is back."""
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        results = [app.send_task(name, args=[b], queue=queue, priority=5, producer=producer) for b in bodies]
    for result in results:
        result.get(timeout=600)
    return len(bodies) / (time.perf_counter() - started)


def processed_at(event_id: str) -> datetime:
    """When the worker started processing the event (the time its result row carries)."""
    from sqlalchemy import select

    from worker.db import get_engine
    from worker.models.ledger import LedgerEventRecord

    table = LedgerEventRecord.__table__
    with get_engine().connect() as connection:
        value = connection.execute(select(table.c.processed_at).where(table.c.event_id == event_id)).scalar_one()
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def critical_wait(app: Celery, backlog: int, reps: int) -> list[float]:
    """Milliseconds from sending a critical event to its processing, behind `backlog` normal events."""
    from tests.ledger_cases import event

    waits = []
    for rep in range(reps):
        tag = uuid.uuid4().hex[:8]
        with app.producer_or_acquire() as producer:
            for i in range(backlog):
                body = event(f"bl-{tag}-{i}", "account_closed", {"account": f"bl-{tag}-{i}"}, at=3000)
                app.send_task("ledger.quick_run", args=[body], queue="ledger", priority=5, producer=producer)
        body = event(f"crit-{tag}", "account_closed", {"account": f"crit-{tag}"}, at=3000)
        sent = datetime.now(UTC)
        app.send_task("ledger.quick_run", args=[body], queue="ledger", priority=0).get(timeout=600)
        waits.append((processed_at(f"crit-{tag}") - sent).total_seconds() * 1000)
        if backlog:
            app.control.purge()
            _ready(app, "ledger")
        print(f"  rep {rep + 1}/{reps}: {waits[-1]:.1f} ms", file=sys.stderr)
    return waits


def batch_rate(app: Celery, events: int, per_task: int) -> float:
    """Events per second through ledger.quick_run_batch: validated, applied, results stored and returned."""
    from ledger.generate import generate

    stream = [i["event"] for i in generate(events, 0, seed=1, now=datetime.now(UTC), prefix=uuid.uuid4().hex[:6])]
    chunks = [stream[i : i + per_task] for i in range(0, len(stream), per_task)]
    started = time.perf_counter()
    results = [app.send_task("ledger.quick_run_batch", args=[c], queue="ledger", priority=5) for c in chunks]
    statuses: dict[str, int] = {}
    for result in results:
        for status, n in result.get(timeout=900)["by_status"].items():
            statuses[status] = statuses.get(status, 0) + n
    rate = events / (time.perf_counter() - started)
    print(f"  batch statuses: {statuses}", file=sys.stderr)
    return rate


def main() -> int:
    """Measure and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000, help="tasks for the per-task figures")
    parser.add_argument("--events", type=int, default=100_000, help="events for the batch figure")
    parser.add_argument("--per-task", type=int, default=5000, help="events per batch task")
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    from worker.redis_server import RedisServer, free_port

    work = Path(tempfile.mkdtemp(prefix="fleet-bench-ledger-"))
    server = RedisServer(port=free_port(), data_dir=work / "redis").start()
    os.environ.update(
        {
            "FLEET_BROKER_URL": server.url,
            "FLEET_LOG_DIR": str(work / "log"),
            "FLEET_DATABASE_URL": f"sqlite:///{work / 'fleet.db'}",
        }
    )
    try:
        return _measure(args, server.url, work)
    finally:
        server.stop()


def _measure(args: argparse.Namespace, broker: str, work: Path) -> int:
    from worker.migrate import upgrade

    upgrade(os.environ["FLEET_DATABASE_URL"])
    bare_app.conf.update(broker_url=broker, result_backend=broker)
    from worker.application import app

    figures: list[tuple[str, str]] = []
    bare = Worker("bench.ledger:bare_app", "bare", args.concurrency, work / "bare.log")
    _ready(bare_app, "bare", "bare.noop")
    baseline = throughput(bare_app, "bare.noop", "bare", [None] * args.tasks)
    bare.stop()
    figures.append(("bare no-op tasks/s", f"{baseline:,.0f}"))
    fleet = Worker("worker", "ledger", args.concurrency, work / "fleet.log")
    _ready(app, "ledger")
    from tests.ledger_cases import event

    tag = uuid.uuid4().hex[:6]
    bodies = [
        event(f"one-{tag}-{i}", "account_opened", {"account": f"one-{tag}-{i}", "currency": "EUR"})
        for i in range(args.tasks)
    ]
    single = throughput(app, "ledger.quick_run", "ledger", bodies)
    figures.append(("ledger.quick_run events/s (one per task)", f"{single:,.0f}"))
    figures.append(("  ratio to bare no-op (goal >= 0.70)", f"{single / baseline:.2f}"))
    rate = batch_rate(app, args.events, args.per_task)
    figures.append((f"ledger.quick_run_batch events/s, SQLite ({args.per_task}/task)", f"{rate:,.0f}"))
    figures.append(("  goal 20,000/s; ratio to bare no-op tasks/s", f"{rate / baseline:.2f}"))
    empty = critical_wait(app, 0, args.reps)
    behind = critical_wait(app, args.backlog, args.reps)
    fleet.stop()
    for label, waits in (("empty queue", empty), (f"behind {args.backlog:,} normal", behind)):
        figures.append(
            (
                f"critical wait to start, {label}: p50 / p95 ms",
                f"{statistics.median(waits):.1f} / {percentile(waits, 95):.1f}",
            )
        )
    if os.environ.get("FLEET_TEST_POSTGRES_URL"):
        figures.append(("PostgreSQL batch", "run with FLEET_DATABASE_URL set to it (see docs/ledger.md)"))
    width = max(len(label) for label, _ in figures)
    for label, value in figures:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Worker RSS after 100,000 tasks: growth of the pool processes after warm-up.

python -m bench.memory [--tasks 100000] [--warmup 10000] [--quick]

One fleet worker (prefork, 2 processes, the fleet's settings) serves `fleet.ping` sent in chunks;
the RSS of its pool processes is sampled after each chunk. Process recycling
(`worker_max_tasks_per_child`, 1,000,000 in the fleet) is set to 10x the tasks, or it could hide a leak.
Goal: RSS after all tasks at most 10 % above RSS after warm-up.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.common import BenchContext, Row, fleet_worker, private_environment, render

CHUNK = 5_000


def pool_rss_mb(worker: Any) -> float:
    """The largest RSS among the worker's pool processes, in MB."""
    import psutil

    children = psutil.Process(worker.process.pid).children()
    return max((c.memory_info().rss for c in children), default=0) / 2**20


def send(count: int) -> None:
    """Send `count` fleet.ping and wait for the last one (the queue is FIFO within a priority)."""
    from worker.application import app

    with app.producer_or_acquire() as producer:
        last = None
        for index in range(count):
            last = app.send_task(
                "fleet.ping", queue="reports", priority=5, producer=producer, ignore_result=index < count - 1
            )
    assert last is not None
    last.get(timeout=900)


def measure(ctx: BenchContext, tasks: int, warmup: int) -> dict[str, float]:
    """RSS after warm-up and after `tasks` tasks in all."""
    worker = fleet_worker(ctx, "memory", "reports", concurrency=2, extra=["--max-tasks-per-child", str(10 * tasks)])
    samples = []
    try:
        done = 0
        send(warmup)
        done += warmup
        warm = pool_rss_mb(worker)
        while done < tasks:
            step = min(CHUNK, tasks - done)
            send(step)
            done += step
            samples.append(pool_rss_mb(worker))
    finally:
        worker.stop()
    sys.stdout.write(
        f"memory: warm {warm:.1f} MB; after each {CHUNK:,}: " + ", ".join(f"{s:.1f}" for s in samples) + "\n"
    )
    return {"warm": warm, "end": samples[-1] if samples else warm, "peak": max(samples, default=warm)}


def rows(figures: dict[str, float], tasks: int, warmup: int) -> list[Row]:
    """RSS after warm-up, at the end, and the growth."""
    growth = (figures["end"] / figures["warm"] - 1) * 100
    return [
        Row(f"worker process RSS after {warmup:,} tasks (warm-up)", figures["warm"], "MB"),
        Row(f"worker process RSS after {tasks:,} tasks", figures["end"], "MB", figures["warm"]),
        Row("worker process RSS growth after warm-up", growth, "%", None, "<= 10 %"),
    ]


def run(ctx: BenchContext) -> list[Row]:
    """The memory rows, for `make bench`."""
    tasks, warmup = ctx.size(100_000, 20_000), ctx.size(10_000, 5_000)
    return rows(measure(ctx, tasks, warmup), tasks, warmup)


def main() -> None:
    """Measure and print the rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    tasks, warmup = (20_000, 5_000) if args.quick else (args.tasks, args.warmup)
    with private_environment() as ctx:
        print(render(rows(measure(ctx, tasks, warmup), tasks, warmup)))


if __name__ == "__main__":
    main()

"""The bare Celery baseline: no-op throughput, round trip p50/p95, a chain of 4, a chord of 5.

python -m bench.baseline [--tasks 20000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import BenchContext, Row, percentile, private_environment, render, timed

GOAL = "(reference)"


def measure(ctx: BenchContext, tasks: int = 20_000, samples: int = 300) -> list[Row]:
    """Start one bare worker process and measure it; fill ctx.baseline for the other benchmarks."""
    from celery import chain, chord

    from bench.bare import app, collect, noop

    worker = _bare_worker(ctx, "bare")
    try:
        for _ in range(50):  # warm-up
            noop.delay().get(timeout=30)
        round_trip = timed(lambda: noop.delay().get(timeout=30), samples)
        chain4 = timed(lambda: chain(noop.si(), noop.si(), noop.si(), noop.si())().get(timeout=30), samples // 3)
        chord5 = timed(lambda: chord([noop.si() for _ in range(5)])(collect.s()).get(timeout=30), samples // 3)
        throughput = _throughput(app, noop, tasks)
    finally:
        worker.stop()
    ctx.baseline.update(
        noop_tps=throughput,
        rt_p50_ms=percentile(round_trip, 50),
        rt_p95_ms=percentile(round_trip, 95),
        chain4_p50_ms=percentile(chain4, 50),
        chord5_p50_ms=percentile(chord5, 50),
    )
    return [
        Row("bare no-op throughput", throughput, "tasks/s", goal=GOAL),
        Row("bare round trip p50", ctx.baseline["rt_p50_ms"], "ms", goal=GOAL),
        Row("bare round trip p95", ctx.baseline["rt_p95_ms"], "ms", goal=GOAL),
        Row("bare chain of 4 p50", ctx.baseline["chain4_p50_ms"], "ms", goal=GOAL),
        Row("bare chord of 5 p50", ctx.baseline["chord5_p50_ms"], "ms", goal=GOAL),
    ]


def _bare_worker(ctx: BenchContext, name: str, extra: list[str] | None = None, concurrency: int = 1) -> Any:
    """A started worker of the bare app (one pool process unless told), serving once this returns."""
    from bench.bare import noop
    from bench.common import fleet_worker

    worker = fleet_worker(ctx, name, "bare", concurrency, extra=extra, app_module="bench.bare")
    noop.delay().get(timeout=60)
    return worker


def throughput(ctx: BenchContext, tasks: int, prefetch: int, concurrency: int = 1) -> float:
    """Bare no-op tasks/s of a worker started with `--prefetch-multiplier prefetch -c concurrency` (a row's
    reference)."""
    from bench.bare import app, noop

    worker = _bare_worker(
        ctx, f"bare-c{concurrency}-p{prefetch}", ["--prefetch-multiplier", str(prefetch)], concurrency=concurrency
    )
    try:
        return _throughput(app, noop, tasks)
    finally:
        worker.stop()


def _throughput(app: object, noop: object, tasks: int, queue: str = "bare", hostname: str | None = None) -> float:
    """Tasks/s consumed from a pre-filled queue: the worker is paused while the backlog is sent.

    `hostname` names the one worker of `queue` to pause and resume (its reply ends the wait at once; without
    it every worker is asked and the control call waits out its timeout).
    """
    from bench.bare import app as bare

    destination = [hostname] if hostname else None
    bare.control.cancel_consumer(queue, destination=destination, reply=True)
    with bare.producer_or_acquire() as producer:
        last = None
        for index in range(tasks):
            last = bare.send_task("bare.noop", queue=queue, producer=producer, ignore_result=index < tasks - 1)
    assert last is not None
    started = time.perf_counter()
    bare.control.add_consumer(queue, destination=destination, reply=True)
    last.get(timeout=600)
    return tasks / (time.perf_counter() - started)


def main() -> None:
    """Measure and print the baseline table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args()
    with private_environment() as ctx:
        print(render(measure(ctx, tasks=args.tasks)))


if __name__ == "__main__":
    main()

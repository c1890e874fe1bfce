"""The transport with ownership (#20) against the one before it, side by side in the same run: one event per task,
ledger batches, and the idle wake-up latency (a message published to an idle consumer, until it is received).

`python -m bench.transport` or as part of `make bench` (`run(ctx)`).
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from typing import Any

from bench.common import BenchContext, Row, percentile, private_environment, render

WAKE_SAMPLES = int(os.environ.get("BENCH_WAKE_SAMPLES", "300"))
NEW, OLD = "worker", "bench.legacy_app"


def _wake_latencies(url: str, legacy: bool, samples: int) -> list[float]:
    """Milliseconds from publishing to an idle consumer until its callback runs (kombu's drain loop)."""
    from kombu import Connection, Queue

    from bench import legacy_transport
    from celeryconfig import broker_transport_options
    from worker.transport import FleetConnection

    make = legacy_transport.FleetConnection if legacy else FleetConnection
    name = f"wake-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, routing_key=name)
    received: list[float] = []
    arrived = threading.Event()
    stop = threading.Event()

    def consume() -> None:
        with make(url, transport_options=broker_transport_options) as connection:

            def on_message(_body: Any, message: Any) -> None:
                received.append(time.perf_counter())
                message.ack()
                arrived.set()

            with connection.Consumer(queue, callbacks=[on_message], accept=["json"]):
                ready.set()
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue

    ready = threading.Event()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ready.wait(10)
    latencies = []
    with Connection(url, transport_options=broker_transport_options) as producer_connection:
        producer = producer_connection.Producer()
        producer.publish({"n": -1}, routing_key=name, declare=[queue], priority=5)  # warm both sides
        arrived.wait(5)
        for n in range(samples):
            time.sleep(random.uniform(0.02, 0.06))  # idle: the consumer waits on its BRPOP or its wake-up
            arrived.clear()
            sent = time.perf_counter()
            producer.publish({"n": n}, routing_key=name, priority=5)
            if arrived.wait(5):
                latencies.append((received[-1] - sent) * 1000)
    stop.set()
    thread.join(5)
    return latencies


def _throughput(ctx: BenchContext, app_module: str, one_per_task: bool) -> float:
    from bench import ledger

    if one_per_task:
        return ledger.one_per_task(ctx, ctx.size(ledger.TASKS, 1000), app_module=app_module)
    events = ctx.size(40_000, 10_000)
    return ledger.batches(
        ctx, events, ledger.LEDGER_CONCURRENCY, prefetch=ledger.LEDGER_PREFETCH, app_module=app_module
    )


def run(ctx: BenchContext) -> list[Row]:
    """Rows: each figure on the new transport with the old one as its baseline (ratio = new / old)."""
    from worker.migrate import upgrade

    upgrade(os.environ["FLEET_DATABASE_URL"])
    rows = []
    for label, one in (("one event per task", True), ("ledger batch", False)):
        # Alternated, old first then new then old again, so that a load change on the machine weighs on both.
        old_a = _throughput(ctx, OLD, one)
        new = _throughput(ctx, NEW, one)
        old_b = _throughput(ctx, OLD, one)
        rows.append(Row(f"transport: {label}, ownership vs BRPOP", new, "events/s", (old_a + old_b) / 2, ">= 0.97x"))
    samples = ctx.size(WAKE_SAMPLES, 100)
    print(rows, flush=True)
    old = _wake_latencies(ctx.broker_url, True, samples)
    new = _wake_latencies(ctx.broker_url, False, samples)
    for q in (50, 95):
        rows.append(
            Row(f"transport: idle wake-up p{q}, ownership vs BRPOP", percentile(new, q), "ms", percentile(old, q),
                "within 5 ms of BRPOP (p50)")
        )  # fmt: skip
    return rows


if __name__ == "__main__":
    with private_environment() as context:
        context.quick = bool(os.environ.get("BENCH_QUICK"))
        print(render(run(context)))

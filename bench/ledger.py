"""Ledger figures against the bare baseline of the same run: one event per task, batch events/s
(SQLite, and PostgreSQL when FLEET_TEST_POSTGRES_URL is set), a critical event's wait behind a backlog.

`python -m bench.ledger` (measures the baseline first) or as part of `make bench` (`run(ctx)`).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.common import BenchContext, Row, fleet_worker, percentile, private_environment, render

TASKS = int(os.environ.get("BENCH_LEDGER_TASKS", "5000"))
BATCH_EVENTS = int(os.environ.get("BENCH_LEDGER_EVENTS", "100000"))
PER_TASK = 5000
BACKLOG = 5000
REPS = int(os.environ.get("BENCH_LEDGER_REPS", "20"))


# A worker that consumes only the ledger queue can take two messages at a time (docs/PERFORMANCE.md, section 2).
LEDGER_PREFETCH = 2
# Two pool processes: one applies an event while the main process hands the other the next one (section 2).
LEDGER_CONCURRENCY = 2


def _worker(
    ctx: BenchContext,
    name: str,
    concurrency: int = 1,
    env: dict[str, str] | None = None,
    prefetch: int = 1,
    app_module: str = "worker",
) -> Any:
    extra = [] if prefetch == 1 else ["--prefetch-multiplier", str(prefetch)]
    worker = fleet_worker(ctx, name, "ledger", concurrency, env, extra, app_module)
    if app_module != "worker":
        from worker.application import app

        worker.wait_ready(app)
    return worker


def _event(event_id: str) -> dict[str, Any]:
    from tests.ledger_cases import event

    return event(event_id, "account_opened", {"account": event_id, "currency": "EUR"}, at=3000)


def one_per_task(
    ctx: BenchContext,
    tasks: int,
    name: str = "ledger.quick_run",
    prefetch: int = 1,
    concurrency: int = 1,
    app_module: str = "worker",
) -> float:
    """Events/s consumed from a pre-filled queue, one event per task (the baseline's method)."""
    from worker.application import app

    label = f"single-{name.replace('.', '-')}-c{concurrency}-p{prefetch}-{app_module.replace('.', '-')}"
    worker = _worker(ctx, label, concurrency, prefetch=prefetch, app_module=app_module)
    try:
        app.control.cancel_consumer("ledger", destination=[worker.hostname], reply=True)
        tag = uuid.uuid4().hex[:6]
        with app.producer_or_acquire() as producer:
            last = None
            for index in range(tasks):
                last = app.send_task(
                    name,
                    args=[] if name == "fleet.ping" else [_event(f"one-{tag}-{index}")],
                    queue="ledger",
                    priority=5,
                    producer=producer,
                    ignore_result=index < tasks - 1,
                )
        assert last is not None
        started = time.perf_counter()
        app.control.add_consumer("ledger", destination=[worker.hostname], reply=True)
        last.get(timeout=900)
        return tasks / (time.perf_counter() - started)
    finally:
        worker.stop()


def batches(
    ctx: BenchContext,
    events: int,
    concurrency: int,
    env: dict[str, str] | None = None,
    prefetch: int = 1,
    app_module: str = "worker",
) -> float:
    """Events/s through ledger.quick_run_batch: validated, applied, results stored and returned."""
    from ledger.generate import generate
    from worker.application import app

    now = datetime.now(UTC)
    # Each task has its own stream (its own accounts), so tasks run in parallel stay valid.
    chunks = [
        [i["event"] for i in generate(PER_TASK, 0, seed=n, now=now, prefix=f"b{n}-{uuid.uuid4().hex[:4]}")]
        for n in range(max(1, events // PER_TASK))
    ]
    label = f"ledger-batch-{concurrency}-p{prefetch}-{app_module.replace('.', '-')}"
    worker = _worker(ctx, label, concurrency, env, prefetch, app_module)
    try:
        started = time.perf_counter()
        sent = [
            app.send_task("ledger.quick_run_batch", args=[c], queue="ledger", priority=5, argsrepr="[<batch>]")
            for c in chunks
        ]
        accepted = sum(r.get(timeout=900)["by_status"].get("accepted", 0) for r in sent)
        elapsed = time.perf_counter() - started
    finally:
        worker.stop()
    total = sum(len(c) for c in chunks)
    if accepted != total:
        raise RuntimeError(f"only {accepted} of {total} generated events were accepted")
    return total / elapsed


def _processed_at(event_id: str) -> datetime:
    from sqlalchemy import text

    from worker.db import get_engine

    with get_engine().connect() as connection:
        value = connection.execute(
            text("SELECT processed_at FROM ledger_events WHERE event_id = :e"), {"e": event_id}
        ).scalar_one()
    found = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def critical_waits(ctx: BenchContext, backlog: int, reps: int, prefetch: int = 1) -> list[float]:
    """Milliseconds from sending a critical event until the worker started it, behind `backlog` normal ones."""
    from worker.application import app

    worker = _worker(ctx, f"ledger-critical-{backlog}-p{prefetch}", prefetch=prefetch)
    waits = []
    try:
        for _ in range(reps):
            tag = uuid.uuid4().hex[:8]
            with app.producer_or_acquire() as producer:
                for index in range(backlog):
                    app.send_task(
                        "ledger.quick_run",
                        args=[_event(f"bl-{tag}-{index}")],
                        queue="ledger",
                        priority=5,
                        producer=producer,
                        ignore_result=True,
                    )
            sent = datetime.now(UTC)
            app.send_task("ledger.quick_run", args=[_event(f"crit-{tag}")], queue="ledger", priority=0).get(timeout=600)
            waits.append((_processed_at(f"crit-{tag}") - sent).total_seconds() * 1000)
            if backlog:
                app.control.purge()
    finally:
        worker.stop()
    return waits


def _postgres_env() -> dict[str, str] | None:
    server = os.environ.get("FLEET_TEST_POSTGRES_URL")
    if not server:
        return None
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from worker.db import make_engine
    from worker.migrate import upgrade

    name = f"fleet_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return {"FLEET_DATABASE_URL": url}


def run(ctx: BenchContext) -> list[Row]:
    """Every ledger figure, with the bare no-op throughput of the same run as the baseline."""
    from worker.migrate import upgrade

    upgrade(os.environ["FLEET_DATABASE_URL"])
    noop = ctx.baseline.get("noop_tps")
    tasks, events, reps = ctx.size(TASKS, 2_000), ctx.size(BATCH_EVENTS, 30_000), ctx.size(REPS, 5)
    from bench import baseline

    ping = one_per_task(ctx, tasks, "fleet.ping")
    single = one_per_task(ctx, tasks)
    pipelined = one_per_task(ctx, tasks, prefetch=LEDGER_PREFETCH)
    bare_pipelined = baseline.throughput(ctx, tasks, LEDGER_PREFETCH)
    two = one_per_task(ctx, tasks, concurrency=LEDGER_CONCURRENCY)
    bare_two = baseline.throughput(ctx, tasks, 1, LEDGER_CONCURRENCY)
    flag = f"--prefetch-multiplier {LEDGER_PREFETCH}"
    rows = [
        Row("fleet.ping on a fleet worker (c1): the fleet's settings, no work", ping, "tasks/s", noop, "(reference)"),
        Row("ledger.quick_run, one event per task (c1)", single, "events/s", noop, ">= 0.70 x bare"),
        Row("ledger.quick_run / fleet.ping (the ledger's own cost)", single / ping, "ratio", None, ""),
        Row(
            f"ledger.quick_run, one event per task, ledger worker with -c {LEDGER_CONCURRENCY}",
            two,
            "events/s",
            noop,
            ">= 0.70 x bare",
        ),
        Row(f"bare no-op throughput with -c {LEDGER_CONCURRENCY}", bare_two, "tasks/s", noop, "(reference)"),
        Row(
            f"the same ledger.quick_run / bare no-op, both with -c {LEDGER_CONCURRENCY}",
            two / bare_two,
            "ratio",
            None,
            "",
        ),
        Row(
            f"ledger.quick_run, one event per task, ledger worker with {flag} (c1)",
            pipelined,
            "events/s",
            noop,
            ">= 0.70 x bare",
        ),
        Row(f"bare no-op throughput with {flag}", bare_pipelined, "tasks/s", noop, "(reference)"),
        Row(f"the same ledger.quick_run / bare no-op, both with {flag}", pipelined / bare_pipelined, "ratio", None, ""),
    ]
    for concurrency in (2,):  # 1, 2 and 4 processes: bench/scaling.py
        rate = batches(ctx, events, concurrency)
        rows.append(Row(f"ledger.quick_run_batch, SQLite (c{concurrency})", rate, "events/s", noop, ">= 20,000/s"))
        rate = batches(ctx, events, concurrency, prefetch=LEDGER_PREFETCH)
        label = f"ledger.quick_run_batch, SQLite (c{concurrency}), ledger worker with {flag}"
        rows.append(Row(label, rate, "events/s", noop, ">= 20,000/s"))
    postgres = _postgres_env()
    if postgres is not None:
        rate = batches(ctx, events // 2, 2, postgres)
        rows.append(Row("ledger.quick_run_batch, PostgreSQL (c2)", rate, "events/s", noop, "reported"))
    rt = ctx.baseline.get("rt_p50_ms")
    for prefetch in (1, LEDGER_PREFETCH):
        which = "" if prefetch == 1 else f", ledger worker with --prefetch-multiplier {prefetch}"
        empty = critical_waits(ctx, 0, reps, prefetch)
        behind = critical_waits(ctx, BACKLOG, reps, prefetch)
        for label, q in (("p50", 50), ("p95", 95)):
            alone = percentile(empty, q)
            rows.append(
                Row(f"critical event wait to start, empty queue{which}, {label}", alone, "ms", rt, "(reference)")
            )
            rows.append(
                Row(
                    f"critical event wait to start, behind {BACKLOG:,} normal{which}, {label}",
                    percentile(behind, q),
                    "ms",
                    alone,
                    "<= 5x empty",
                )
            )
    return rows


def main() -> None:
    """Measure the baseline, then the ledger figures, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks for the baseline throughput")
    args = parser.parse_args()
    with private_environment() as ctx:
        from bench import baseline

        rows = baseline.measure(ctx, tasks=args.tasks)
        rows += run(ctx)
    print(render(rows))


if __name__ == "__main__":
    main()

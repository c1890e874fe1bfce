"""Report generation over a day of 1,000,000 task executions, and the cost of leaving telemetry on.

python -m bench.reports [--executions 1000000] [--tasks 20000] [--skip-overhead]

Generation runs in a fresh process (seconds and peak RSS of that process, the way `agent report` runs);
the overhead compares the bare no-op throughput with the fleet's telemetry handlers on and off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import ROOT, BenchContext, Row, private_environment, render

TASKS = [
    ("ledger.quick_run", "ledger", 0.004),
    ("ledger.quick_run_batch", "ledger", 0.05),
    ("agents.analyze", "agents", 0.2),
    ("agents.execute", "agents", 0.8),
    ("agents.verify", "agents", 0.1),
    ("fleet.ping", "reports", 0.002),
    ("reports.collect_metrics", "reports", 0.3),
]


def seed(executions: int, day_end: datetime, seed_value: int = 7) -> None:
    """Per-minute aggregates of one day summing to `executions`, host samples, and 7 earlier reports."""
    from sqlalchemy import insert

    from beat.aggregates import bucket_index, empty_buckets
    from worker.db import session_scope
    from worker.migrate import upgrade
    from worker.reports.models import HostMinute, MetricMinute, StatusReport
    from worker.settings import get_settings

    upgrade(get_settings().database_url)
    rng = random.Random(seed_value)
    per_row = executions // (1440 * len(TASKS))
    rows, hosts = [], []
    start = day_end - timedelta(days=1)
    for m in range(1440):
        minute = start + timedelta(minutes=m)
        for name, queue, runtime in TASKS:
            count = per_row + (executions - per_row * 1440 * len(TASKS) if (m, name) == (0, TASKS[0][0]) else 0)
            buckets = empty_buckets()
            buckets[bucket_index(runtime)] = count - count // 20
            buckets[bucket_index(runtime * 4)] += count // 20
            failures = rng.randint(0, max(1, count // 100))
            rows.append(
                dict(
                    minute=minute,
                    kind="task",
                    name=name,
                    grp=queue,
                    count=count,
                    failures=failures,
                    retries=failures // 2,
                    runtime_sum=runtime * count,
                    runtime_max=runtime * 5,
                    wait_sum=0.05 * count,
                    wait_count=count,
                    wait_max=1.0,
                    buckets=buckets,
                )
            )
        hosts.append(
            dict(
                minute=minute,
                cpu_percent=rng.uniform(10, 60),
                fleet_cpu_percent=rng.uniform(5, 40),
                memory_percent=rng.uniform(30, 70),
                fleet_rss_mb=rng.uniform(300, 600),
                net_kbps=rng.uniform(10, 500),
                disk_kbps=rng.uniform(10, 900),
                error_lines=rng.randint(0, 2),
                warning_lines=rng.randint(0, 5),
                queue_depth={"agents": rng.randint(0, 20), "ledger": rng.randint(0, 50), "reports": 0},
                workers=2,
            )
        )
    with session_scope() as session:
        session.execute(insert(MetricMinute), rows)
        session.execute(insert(HostMinute), hosts)
        for back in range(1, 8):
            session.add(
                StatusReport(
                    report_date=day_end.date() - timedelta(days=back),
                    health="OK",
                    markdown="",
                    figures={"signal_means": {"throughput": 650.0 + back, "failure_rate_pct": 0.5}},
                )
            )


def _peak_mb() -> float:
    """This process's peak RSS: VmHWM of its own memory map. ru_maxrss is not used on Linux: it keeps the
    peak of the process before exec, i.e. of the forked copy of the (large) benchmark parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(day: str, end: str) -> None:
    """Make one report in this process and print seconds and peak RSS as JSON."""
    from beat.components import Probe
    from worker.reports import evidence
    from worker.reports import service as reporting

    # Workers do not run here: a fixed probe and worker count keep the 1 s ping timeouts (the probe's and the
    # host sample's) out of the generation figure. matplotlib is imported first, as it was when the chart
    # module imported it at load: the figure is the report's work, not the process's start.
    evidence.probe = lambda *a, **k: Probe(broker_ms=0.3, database_ms=0.5, workers=("w1", "w2"), expected_workers=2)
    evidence.workers_online = lambda *a, **k: {"w1": [], "w2": []}
    import matplotlib

    matplotlib.use("Agg")  # as beat.chart does, before pyplot
    import matplotlib.pyplot

    started = time.perf_counter()
    result = reporting.generate(date.fromisoformat(day), now=datetime.fromisoformat(end))
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    sys.stdout.write(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "tasks": result["tasks"]}) + "\n")


def generation(ctx: BenchContext, executions: int) -> list[Row]:
    """Seed a day, then time `reporting.generate` for it in a fresh process."""
    end = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    seed(executions, end)
    command = [sys.executable, "-m", "bench.reports", "--child", end.date().isoformat(), end.isoformat()]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ, timeout=300, check=True)
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["tasks"] == executions, figures
    return [
        Row(f"report over {executions:,} executions", figures["seconds"], "s", goal="< 3 s"),
        Row("report generation peak RSS", figures["peak_mb"], "MB", goal="< 300 MB"),
    ]


def _throughput_with(ctx: BenchContext, telemetry: bool, tasks: int) -> float:
    from bench.bare_telemetry import app, noop
    from bench.baseline import _throughput
    from tests.support import WorkerProcess

    config = ctx.workdir / f"telemetry-{telemetry}.yaml"
    config.write_text(f"reports:\n  telemetry: {str(telemetry).lower()}\n")
    worker = WorkerProcess(
        queues="bare",
        name=f"tele-{telemetry}",
        env={"FLEET_CONFIG": str(config)},
        log_path=ctx.workdir / f"tele-{telemetry}.out",
    )
    worker.command[worker.command.index("-A") + 1] = "bench.bare_telemetry"
    worker.start()
    try:
        for _ in range(50):
            noop.delay().get(timeout=60)
        return _throughput(app, noop, tasks)
    finally:
        worker.stop()


def overhead(ctx: BenchContext, tasks: int, rounds: int = 3) -> list[Row]:
    """No-op throughput with telemetry off and on, alternated `rounds` times (medians: the host is shared)."""
    off, on = [], []
    for _ in range(rounds):
        off.append(_throughput_with(ctx, False, tasks))
        on.append(_throughput_with(ctx, True, tasks))
    base = ctx.baseline.get("noop_tps")
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    sys.stdout.write(
        "rounds (tasks/s): off "
        + ", ".join(f"{v:.0f}" for v in off)
        + "; on "
        + ", ".join(f"{v:.0f}" for v in on)
        + "; on/off "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + "\n"
    )
    return [
        Row("no-op throughput, telemetry off (median)", statistics.median(off), "tasks/s", baseline=base),
        Row("no-op throughput, telemetry on (median)", statistics.median(on), "tasks/s", baseline=base),
        Row("telemetry on / off (median of pairs)", statistics.median(ratios), "ratio", goal=">= 0.90"),
    ]


def handler_cost(calls: int = 100_000) -> list[Row]:
    """Microseconds the telemetry handlers add to one task, timed in-process (immune to a noisy broker)."""
    from types import SimpleNamespace

    from worker import telemetry

    request = SimpleNamespace(delivery_info={"routing_key": "bare"}, eta=None, x_sent_at=time.time())
    task = SimpleNamespace(name="bare.noop", request=request)
    telemetry.RECORDER._pid = os.getpid()  # time the handlers, not the flush thread
    started = time.perf_counter()
    for n in range(calls):
        telemetry._task_started(task_id=str(n), task=task)
        telemetry._task_finished(task_id=str(n), task=task, state="SUCCESS")
    per_task_us = (time.perf_counter() - started) / calls * 1e6
    telemetry.RECORDER.take()
    return [Row("telemetry handlers per task", per_task_us, "µs")]


def run(ctx: BenchContext) -> list[Row]:
    """Generation and the telemetry handlers' in-process cost, for `make bench` (bench/overhead.py measures
    the no-op throughput with telemetry and logging on and off)."""
    return generation(ctx, ctx.size(1_000_000, 200_000)) + handler_cost()


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="also measure the bare baseline for ratios")
    parser.add_argument("--child", nargs=2, metavar=("DAY", "END"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with private_environment() as ctx:
        rows: list[Row] = []
        if args.baseline:
            from bench import baseline

            rows += baseline.measure(ctx, tasks=args.tasks)
        rows += generation(ctx, args.executions)
        rows += handler_cost()
        if not args.skip_overhead:
            rows += overhead(ctx, args.tasks, args.rounds)
        print(render(rows))


if __name__ == "__main__":
    main()

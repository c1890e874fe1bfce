"""Horizontal scaling: ledger batch throughput with 1, 2 and 4 worker processes, and what limits it.

python -m bench.scaling [--events 100000] [--quick]

For each process count: events/s through `ledger.quick_run_batch` (bench.ledger.batches, SQLite or
FLEET_BENCH_DATABASE_URL), the CPU Redis used (INFO cpu, as a share of one core) and the CPU the worker's
processes used (as a share of the machine's cores). Writes the curve to docs/scaling.png.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bench.common import ROOT, BenchContext, Row, private_environment, render

PROCESSES = (1, 2, 4)
PLOT = ROOT / "docs" / "scaling.png"


def _redis_cpu(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _children_cpu() -> float:
    # Worker processes are this process's children (and grandchildren, reaped by their parent).
    times = os.times()
    return times.children_user + times.children_system


def point(ctx: BenchContext, processes: int, events: int) -> dict[str, float]:
    """One point of the curve; CPU shares over the time the batches ran (generation and start excluded
    from the elapsed time, so the shares are upper bounds)."""
    import psutil

    from bench.ledger import PER_TASK, batches

    redis_before, cpu_before, host_before = _redis_cpu(ctx.broker_url), _children_cpu(), psutil.cpu_times()
    rate = batches(ctx, events, processes)
    elapsed = max(1, events // PER_TASK) * PER_TASK / rate
    host_after = psutil.cpu_times()
    busy = sum(getattr(host_after, f) - getattr(host_before, f) for f in ("user", "system", "nice", "irq", "softirq"))
    total = busy + (host_after.idle - host_before.idle) + (host_after.iowait - host_before.iowait)
    found = {
        "processes": processes,
        "rate": rate,
        "redis": (_redis_cpu(ctx.broker_url) - redis_before) / elapsed,
        "workers": (_children_cpu() - cpu_before) / elapsed / (os.cpu_count() or 1),
        "host": busy / total if total else 0.0,
    }
    sys.stdout.write(
        f"scaling c{processes}: {rate:,.0f} events/s, Redis {found['redis']:.0%} of a core, workers "
        f"{found['workers']:.0%} of {os.cpu_count()} cores, host busy {found['host']:.0%} (all processes)\n"
    )
    return found


def plot(points: list[dict[str, float]], path: Any = PLOT) -> None:
    """The curve against perfect scaling from one process, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["processes"] for p in points]
    ys = [p["rate"] for p in points]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(xs, ys, "o-", label="ledger.quick_run_batch (measured)")
    axis.plot(xs, [ys[0] * x for x in xs], "--", color="grey", label="linear from 1 process")
    axis.axhline(20_000, color="red", linestyle=":", label="goal 20,000 events/s")
    axis.set_xlabel("worker processes (prefork -c N)")
    axis.set_ylabel("events/s end to end")
    axis.set_xticks(xs)
    axis.set_title(f"Ledger batch throughput, {os.cpu_count()}-core host")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def measure(ctx: BenchContext, events: int) -> list[dict[str, float]]:
    """Every point, the database migrated first; the plot written."""
    from worker.migrate import upgrade

    upgrade(os.environ["FLEET_DATABASE_URL"])
    points = [point(ctx, processes, events) for processes in PROCESSES]
    plot(points)
    ctx.extra["scaling"] = points
    return points


def rows(points: list[dict[str, float]]) -> list[Row]:
    """One row per process count, the ratio against one process."""
    first = points[0]["rate"]
    return [
        Row(
            f"scaling: ledger batch, {int(p['processes'])} process(es); Redis {p['redis']:.0%} of a core, "
            f"workers {p['workers']:.0%} of the cores, host busy {p['host']:.0%}",
            p["rate"],
            "events/s",
            first,
            "the curve",
        )
        for p in points
    ]


def run(ctx: BenchContext) -> list[Row]:
    """The scaling rows, for `make bench`."""
    return rows(measure(ctx, ctx.size(100_000, 30_000)))


def main() -> None:
    """Measure, plot and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with private_environment() as ctx:
        print(render(rows(measure(ctx, 30_000 if args.quick else args.events))))
        print(f"plot: {PLOT}")


if __name__ == "__main__":
    main()

"""Metrics and logging overhead: the bare no-op throughput with the fleet's signal handlers on vs off.

python -m bench.overhead [--tasks 1000] [--blocks 24] [--quick] [--breakdown]

One worker per variant of the same bare app, all started at once, each on a queue of its own:
`bench.bare` (no fleet handler), `bench.bare_monitored` (no fleet code, the fleet's task events, extended
results and STARTED states), `bench.bare_signals` with `reports.telemetry: false` (JSON logging with
the task context and correlation ids only) and `bench.bare_signals` with telemetry on (every handler: also
per-minute aggregates and Prometheus counters). They take turns: a block of `--tasks` no-ops is queued for
one while it is paused (the others wait on their empty queues), that worker consumes it, then the next
variant's block, `--blocks` times, every other pass in the reverse order. The host is shared and noisy:
blocks of a second or two, alternated, see the same host, where whole runs minutes apart did not. A variant's
figure is the median of its blocks; its ratio the median of its ratios to the `off` block of the same pass.
Goal: all handlers on at most 10 % slower than off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench.common import BenchContext, Row, fleet_worker, private_environment, render

# label: (app module, reports.telemetry)
VARIANTS = {
    "off": ("bench.bare", False),
    "monitoring settings": ("bench.bare_monitored", False),
    "logging": ("bench.bare_signals", False),
    "all signals": ("bench.bare_signals", True),
}


# Which of the monitoring settings costs what (`--breakdown`): bench.bare_monitored with one setting each.
BREAKDOWN = {
    "off": ("bench.bare", False),
    "events": ("bench.bare_monitored", False),
    "extended": ("bench.bare_monitored", False),
    "started": ("bench.bare_monitored", False),
    "monitoring settings": ("bench.bare_monitored", False),
}


def measure(
    ctx: BenchContext, tasks: int, blocks: int, variants: dict[str, tuple[str, bool]] = VARIANTS
) -> dict[str, list[float]]:
    """Tasks/s of every variant's worker, block by block, the variants alternated within each pass.

    Each block is the baseline's measure (`bench.baseline._throughput`) on the variant's own queue; a worker
    whose block is over keeps consuming its empty queue, idle, until its next block pauses it again.
    """
    from bench.bare import app, noop
    from bench.baseline import _throughput

    workers = {}
    try:
        for label, (module, telemetry) in variants.items():
            config = ctx.workdir / f"telemetry-{telemetry}.yaml"
            config.write_text(f"reports:\n  telemetry: {str(telemetry).lower()}\n")
            env = {"FLEET_CONFIG": str(config)}
            if label in ("events", "extended", "started"):
                env["BENCH_MONITORED"] = label
            queue = f"overhead-{label.replace(' ', '-')}"  # the worker's name too
            worker = fleet_worker(ctx, queue, queue, env=env, app_module=module)
            workers[label] = (worker, queue)
            for _ in range(50):  # warm-up, and the worker is serving
                noop.apply_async(queue=queue).get(timeout=60)
        figures: dict[str, list[float]] = {label: [] for label in variants}
        for index in range(blocks):
            order = list(workers.items())
            for label, (worker, queue) in order if index % 2 == 0 else reversed(order):
                figures[label].append(_throughput(app, noop, tasks, queue, worker.hostname))
    finally:
        for worker, _ in workers.values():
            worker.stop()
    for label, values in figures.items():
        sys.stdout.write(f"overhead {label}: " + ", ".join(f"{v:.0f}" for v in values) + " tasks/s\n")
    return figures


def handler_cost_us(calls: int = 20_000) -> float:
    """Microseconds of the fleet's task_prerun + task_postrun handlers per task, in this process (no noise
    from the broker): the same handlers the worker runs, on the bare no-op task."""
    from celery import signals

    import worker.signals
    import worker.telemetry
    from bench.bare import noop

    worker.signals.install()
    worker.telemetry.install()

    noop.push_request(id="bench", delivery_info={"routing_key": "bare"}, x_correlation_id="bench")
    try:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for index in range(calls // 5):
                task_id = f"bench-{index}"
                signals.task_prerun.send(sender=noop, task_id=task_id, task=noop, args=(), kwargs={})
                signals.task_postrun.send(
                    sender=noop, task_id=task_id, task=noop, args=(), kwargs={}, retval=None, state="SUCCESS"
                )
            samples.append((time.perf_counter() - started) / (calls // 5) * 1e6)
    finally:
        noop.pop_request()
    return min(samples)


def rows(figures: dict[str, list[float]], baseline: float | None) -> list[Row]:
    """Medians, and the on/off ratio as the median of the per-pass ratios."""
    off = figures["off"]
    # Against the bare per-task time of the run's baseline when there is one (steadier than one variant's).
    per_task_us = 1e6 / (baseline or statistics.median(off))
    cost = handler_cost_us()
    result = [
        Row("fleet task handlers (logging context + telemetry), in-process", cost, "µs/task", per_task_us, "<= 0.10"),
        Row("no-op, fleet signal handlers off (median)", statistics.median(off), "tasks/s", baseline),
    ]
    for label in [name for name in figures if name != "off"]:
        on = figures[label]
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        result.append(Row(f"no-op, {label} on (median)", statistics.median(on), "tasks/s", baseline))
        goal = ">= 0.90" if label == "all signals" else ""
        result.append(
            Row(f"{label} on / off (median of {len(ratios)} passes)", statistics.median(ratios), "ratio", None, goal)
        )
        if label == "all signals" and len(ratios) >= 4:
            # How far one pass is from the next on this host: the spread the median is taken over.
            low, _, high = statistics.quantiles(ratios, n=4)
            result.append(Row(f"{label} on / off, passes' 25th percentile", low, "ratio"))
            result.append(Row(f"{label} on / off, passes' 75th percentile", high, "ratio"))
    return result


def run(ctx: BenchContext) -> list[Row]:
    """The overhead rows, for `make bench`."""
    figures = measure(ctx, ctx.size(1_000, 500), ctx.size(24, 4))
    return rows(figures, ctx.baseline.get("noop_tps"))


def main() -> None:
    """Measure and print the rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1_000, help="no-ops per block")
    parser.add_argument("--blocks", type=int, default=24, help="blocks per variant")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="each monitoring setting alone instead")
    args = parser.parse_args()
    with private_environment() as ctx:
        ctx.quick = args.quick
        tasks, blocks = (500, 4) if args.quick else (args.tasks, args.blocks)
        print(render(rows(measure(ctx, tasks, blocks, BREAKDOWN if args.breakdown else VARIANTS), None)))


if __name__ == "__main__":
    main()

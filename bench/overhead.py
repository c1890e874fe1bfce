"""Metrics and logging overhead: the bare no-op throughput with the fleet's signal handlers on vs off.

python -m bench.overhead [--tasks 10000] [--rounds 3] [--quick]

Three workers of the same bare app, alternated round by round (the host is shared and noisy; medians):
`bench.bare` (no fleet handler), `bench.bare_monitored` (no fleet code, the fleet's task events, extended
results and STARTED states), `bench.bare_signals` with `reports.telemetry: false` (JSON logging with
the task context and correlation ids only) and `bench.bare_signals` with telemetry on (every handler: also
per-minute aggregates and Prometheus counters). Goal: all handlers on at most 10 % slower than off.
"""

from __future__ import annotations

import argparse
import statistics
import sys

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


def throughput(ctx: BenchContext, label: str, variant: tuple[str, bool], tasks: int) -> float:
    """Tasks/s of one worker of the variant over a pre-filled queue (the baseline's method)."""
    from bench.bare import app, noop
    from bench.baseline import _throughput

    module, telemetry = variant
    config = ctx.workdir / f"telemetry-{telemetry}.yaml"
    config.write_text(f"reports:\n  telemetry: {str(telemetry).lower()}\n")
    name = f"overhead-{label.replace(' ', '-')}"
    env = {"FLEET_CONFIG": str(config)}
    if label in ("events", "extended", "started"):
        env["BENCH_MONITORED"] = label
    worker = fleet_worker(ctx, name, "bare", env=env, app_module=module)
    try:
        for _ in range(50):  # warm-up, and the worker is serving
            noop.delay().get(timeout=60)
        return _throughput(app, noop, tasks)
    finally:
        worker.stop()


def measure(
    ctx: BenchContext, tasks: int, rounds: int, variants: dict[str, tuple[str, bool]] = VARIANTS
) -> dict[str, list[float]]:
    """Tasks/s of every variant, `rounds` times, interleaved; every other round in the reverse order, so a drift
    of the host during a round does not always favour the same variant."""
    figures: dict[str, list[float]] = {label: [] for label in variants}
    for index in range(rounds):
        order = list(variants.items())
        for label, variant in order if index % 2 == 0 else reversed(order):
            figures[label].append(throughput(ctx, label, variant, tasks))
    for label, values in figures.items():
        sys.stdout.write(f"overhead {label}: " + ", ".join(f"{v:.0f}" for v in values) + " tasks/s\n")
    return figures


def handler_cost_us(calls: int = 20_000) -> float:
    """Microseconds of the fleet's task_prerun + task_postrun handlers per task, in this process (no noise
    from the broker): the same handlers the worker runs, on the bare no-op task."""
    import time

    from celery import signals

    import worker.signals
    import worker.telemetry  # noqa: F401
    from bench.bare import noop

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
    """Medians, and the on/off ratio as the median of the per-round ratios."""
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
        ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
        result.append(Row(f"no-op, {label} on (median)", statistics.median(on), "tasks/s", baseline))
        result.append(
            Row(
                f"{label} on / off (median of rounds)",
                ratio,
                "ratio",
                None,
                ">= 0.90" if label == "all signals" else "",
            )
        )
    return result


def run(ctx: BenchContext) -> list[Row]:
    """The overhead rows, for `make bench`."""
    figures = measure(ctx, ctx.size(6_000, 2_000), ctx.size(5, 2))
    return rows(figures, ctx.baseline.get("noop_tps"))


def main() -> None:
    """Measure and print the rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="each monitoring setting alone instead")
    args = parser.parse_args()
    with private_environment() as ctx:
        ctx.quick = args.quick
        tasks, rounds = (3_000, 2) if args.quick else (args.tasks, args.rounds)
        print(render(rows(measure(ctx, tasks, rounds, BREAKDOWN if args.breakdown else VARIANTS), None)))


if __name__ == "__main__":
    main()

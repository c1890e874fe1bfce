"""Redis commands per task: the bare no-op, fleet.ping under the fleet's settings, ledger.quick_run.

python -m bench.redis_calls [--tasks 2000]

Counts from Redis `INFO commandstats` around `tasks` tasks sent and consumed one by one with their
results read back (a round trip each): what the broker does per task, independent of the host's load.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections import Counter
from typing import Any

from bench.common import BenchContext, Row, fleet_worker, private_environment, render


def _commands(url: str) -> Counter[str]:
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()})


def per_task(ctx: BenchContext, send: Any, tasks: int) -> Counter[str]:
    """Commands per task (all clients: producer, worker, events) while `send()` runs `tasks` times."""
    before = _commands(ctx.broker_url)
    for _ in range(tasks):
        send()
    after = _commands(ctx.broker_url)
    after.subtract(before)
    return Counter({name: round(count / tasks, 2) for name, count in after.items() if count > 0})


def measure(ctx: BenchContext, tasks: int) -> dict[str, Counter[str]]:
    """Commands per task of each variant."""
    import os

    from bench.bare import noop
    from bench.ledger import _event
    from worker.application import app
    from worker.migrate import upgrade

    upgrade(os.environ["FLEET_DATABASE_URL"])
    found: dict[str, Counter[str]] = {}
    bare = fleet_worker(ctx, "calls-bare", "bare", app_module="bench.bare")
    try:
        noop.delay().get(timeout=60)
        found["bare no-op"] = per_task(ctx, lambda: noop.delay().get(timeout=60), tasks)
    finally:
        bare.stop()
    fleet = fleet_worker(ctx, "calls-fleet", "ledger")
    try:
        found["fleet.ping"] = per_task(
            ctx, lambda: app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=60), tasks
        )
        found["ledger.quick_run"] = per_task(
            ctx,
            lambda: app.send_task(
                "ledger.quick_run", args=[_event(f"calls-{uuid.uuid4().hex[:12]}")], queue="ledger", priority=5
            ).get(timeout=60),
            tasks,
        )
    finally:
        fleet.stop()
    for label, counts in found.items():
        sys.stdout.write(f"redis commands per task, {label}: {sum(counts.values()):.1f} {dict(counts.most_common())}\n")
    return found


def rows(found: dict[str, Counter[str]]) -> list[Row]:
    """Total commands per task, against the bare no-op's."""
    bare = sum(found["bare no-op"].values())
    return [
        Row(f"Redis commands per round trip, {label}", sum(counts.values()), "commands", bare, "(explains ratios)")
        for label, counts in found.items()
    ]


def run(ctx: BenchContext) -> list[Row]:
    """The rows, for `make bench`."""
    return rows(measure(ctx, ctx.size(1_000, 300)))


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1_000)
    args = parser.parse_args()
    with private_environment() as ctx:
        print(render(rows(measure(ctx, args.tasks))))


if __name__ == "__main__":
    main()

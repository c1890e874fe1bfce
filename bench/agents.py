"""Agent workflows against the bare Celery canvas of the same shape; parallel execute-stage wall time.

python -m bench.agents [--samples 30] [--processes 6]

- a workflow with 5 independent subtasks (math.calculate, never cached), end to end, p50, against a bare canvas
  of the same shape: a chain of 3 no-ops around a chord of 5 no-ops (goal: at most 2x);
- 5 independent subtasks of 100 ms each (system.status sampling the CPU for 0.1 s): the execute stage's wall
  time, p50 (goal: under 200 ms, that is parallel, not serial). Both workers run `--processes` processes.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from bench.common import BenchContext, Row, percentile, private_environment, render, timed


def _bare_shape() -> Any:
    from celery import chain, chord

    from bench.bare import noop

    return chain(noop.si(), noop.si(), chord([noop.si() for _ in range(5)], noop.si()), noop.si())


def _fleet_shape() -> Any:
    """The same shape with the fleet's own no-op (fleet.ping) under the fleet's settings (task events,
    extended results, JSON logs): what the fleet's configuration costs before any agent code runs."""
    from celery import chain, chord, signature

    def ping() -> Any:
        return signature("fleet.ping", queue="agents", priority=5, immutable=True)

    return chain(ping(), ping(), chord([ping() for _ in range(5)], ping()), ping())


def _workflow(app: Any, subtasks: list[dict[str, Any]]) -> dict[str, Any]:
    request = {"input": "bench", "options": {"subtasks": subtasks}}
    record: dict[str, Any] = app.send_task("agents.run_workflow", args=[request], queue="agents", priority=5).get(
        timeout=60
    )
    if record["status"] != "succeeded":
        raise RuntimeError(f"bench run {record['run_id']} ended {record['status']}: {record['error']}")
    return record


def _calculations() -> list[dict[str, Any]]:
    salt = uuid.uuid4().int % 10**9  # new arguments every run: the tool cache must not answer
    return [{"id": f"s{i}", "tool": "math.calculate", "args": {"expression": f"{salt}+{i}"}} for i in range(5)]


SLOW = [{"id": f"s{i}", "tool": "system.status", "args": {"interval_s": 0.1}} for i in range(5)]


def run(ctx: BenchContext, samples: int = 30, processes: int = 6) -> list[Row]:
    """Start a bare worker and a fleet worker with `processes` processes each, and measure."""
    from tests.support import WorkerProcess
    from worker.application import app
    from worker.migrate import upgrade
    from worker.settings import get_settings

    upgrade(get_settings().database_url)
    bare = WorkerProcess(
        queues="bare", name="bare-agents", concurrency=processes, log_path=ctx.workdir / "bare-agents.out"
    )
    bare.command[bare.command.index("-A") + 1] = "bench.bare"
    fleet = WorkerProcess(
        queues="agents", name="bench-agents", concurrency=processes, log_path=ctx.workdir / "agents.out"
    )
    bare.start()
    fleet.start(app)
    try:
        for _ in range(5):  # warm-up: imports, connections, SQLite pages
            _bare_shape()().get(timeout=60)
            _workflow(app, _calculations())
        bare_ms: list[float] = []
        fleet_ms: list[float] = []
        flow_ms: list[float] = []
        for _ in range(samples):  # interleaved, so a burst of load on the shared machine hits all alike
            bare_ms += timed(lambda: _bare_shape()().get(timeout=60), 1)
            fleet_ms += timed(lambda: _fleet_shape().apply_async(priority=5).get(timeout=60), 1)
            flow_ms += timed(lambda: _workflow(app, _calculations()), 1)
        execute_ms = []
        for _ in range(max(5, samples // 3)):
            stages = {s["stage"]: s for s in _workflow(app, SLOW)["stages"]}
            execute_ms.append(stages["execute"]["duration_ms"])
    finally:
        fleet.stop()
        bare.stop()
    bare_p50 = percentile(bare_ms, 50)
    return [
        Row("bare chain of 3 around a chord of 5, p50", bare_p50, "ms", goal="(reference)"),
        Row(
            "fleet.ping in the same shape (fleet settings), p50",
            percentile(fleet_ms, 50),
            "ms",
            bare_p50,
            "(reference)",
        ),
        Row(
            "agents workflow, 5 independent subtasks, p50",
            percentile(flow_ms, 50),
            "ms",
            bare_p50,
            "≤ 2x the bare shape",
        ),
        Row("agents workflow, 5 independent subtasks, p95", percentile(flow_ms, 95), "ms", percentile(bare_ms, 95), ""),
        Row(
            f"agents execute stage, 5 × 100 ms subtasks, p50 ({processes} processes)",
            percentile(execute_ms, 50),
            "ms",
            100.0,
            "< 200 ms",
        ),
    ]


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--processes", type=int, default=6)
    args = parser.parse_args()
    with private_environment() as ctx:
        print(render(run(ctx, args.samples, args.processes)))


if __name__ == "__main__":
    main()

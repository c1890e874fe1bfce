"""Shared pieces of every benchmark: a private broker, worker processes, timing, the result table."""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One figure of the table: the value, what it is compared with, and the goal."""

    figure: str
    value: float
    unit: str
    baseline: float | None = None
    goal: str = ""

    @property
    def ratio(self) -> float | None:
        """value / baseline, when there is a baseline."""
        return None if not self.baseline else self.value / self.baseline


@dataclass
class BenchContext:
    """What a benchmark gets: the private broker URL, a scratch folder and the baseline figures."""

    broker_url: str
    workdir: Path
    baseline: dict[str, float] = field(default_factory=dict)
    quick: bool = False
    # Figures a benchmark leaves for the others or for docs/PERFORMANCE.md (the scaling curve).
    extra: dict[str, object] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        """`full` for `make bench`, `quick` with --quick."""
        return quick if self.quick else full


@contextmanager
def private_environment(appendonly: bool = False) -> Iterator[BenchContext]:
    """A private Redis and SQLite database for one benchmark run; FLEET_* set before the fleet is imported."""
    from worker.settings import get_settings

    if get_settings.cache_info().currsize:
        raise RuntimeError("set up the benchmark environment before the fleet reads its settings")
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    server = RedisServer(port=free_port(), data_dir=workdir / "redis", appendonly=appendonly).start()
    os.environ.update(
        {
            "FLEET_BROKER_URL": server.url,
            "FLEET_DATABASE_URL": os.environ.get("FLEET_BENCH_DATABASE_URL", f"sqlite:///{workdir / 'fleet.db'}"),
            "FLEET_LOG_DIR": str(workdir / "log"),
            "FLEET_REPORT_DIR": str(workdir / "reports"),
            "FLEET_FLOWER_AUTH": "bench:bench",
        }
    )
    try:
        yield BenchContext(broker_url=server.url, workdir=workdir)
    finally:
        _forget_subscriptions()
        server.stop()


def _forget_subscriptions() -> None:
    """A result still subscribed unsubscribes when collected, at interpreter exit, from a Redis stopped by then
    (a traceback each): close every app's result subscriptions while Redis still answers."""
    from celery._state import _get_active_apps

    gc.collect()
    for app in _get_active_apps():
        consumer = getattr(app.backend, "result_consumer", None)
        if consumer is not None and getattr(consumer, "_pubsub", None) is not None:
            consumer.stop()
            consumer.subscribed_to.clear()


def fleet_worker(
    ctx: BenchContext,
    name: str,
    queues: str,
    concurrency: int = 1,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
    app_module: str = "worker",
) -> Any:
    """A started worker process of the fleet app (or of `app_module`, e.g. bench.bare), logging to the workdir."""
    from tests.support import WorkerProcess

    worker = WorkerProcess(
        queues=queues, name=name, concurrency=concurrency, env=env, extra=extra, log_path=ctx.workdir / f"{name}.out"
    )
    if app_module != "worker":
        worker.command[worker.command.index("-A") + 1] = app_module
        return worker.start()
    from worker.application import app

    return worker.start(app)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1] if len(ordered) > 1 else ordered[0]


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def render(rows: list[Row]) -> str:
    """The table as Markdown."""
    lines = ["| figure | value | unit | baseline | ratio | goal |", "|---|---:|---|---:|---:|---|"]
    for row in rows:
        baseline = f"{row.baseline:,.1f}" if row.baseline else ""
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        value = f"{row.value:,.3f}" if row.unit == "ratio" else f"{row.value:,.1f}"
        lines.append(f"| {row.figure} | {value} | {row.unit} | {baseline} | {ratio} | {row.goal} |")
    return "\n".join(lines)

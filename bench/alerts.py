"""The CPU cost of one alert evaluation: 10 queues, 1,000,000 samples stored.

python -m bench.alerts [--samples 1000000] [--queues 10]

Three parts, each timed with process CPU time (not wall clock): the pure rules and incidents over a history
holding `samples` values (20 evaluations x samples/20 series), parsing a Prometheus exposition of samples/20
series (what the sampler reads each turn), and the two SQL counts of recent rows in a SQLite `ledger_alerts`
and `dead_letters` holding `samples` rows each.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from beat.alert_config import AlertsConfig
from beat.alert_rules import evaluate, labels_of
from beat.incidents import step
from bench.common import BenchContext, Row

HISTORY = 20


def _history(samples: int, queues: int) -> list[tuple[float, dict[str, dict[tuple[tuple[str, str], ...], float]]]]:
    per_sample = samples // HISTORY
    names = max(1, per_sample // (2 * queues))  # failed + succeeded counters per (task name, queue)
    history = []
    for turn in range(HISTORY):
        sample: dict[str, dict[tuple[tuple[str, str], ...], float]] = {
            "celery_queue_length": {labels_of(queue=f"q{q}"): float(turn * 7 % 50) for q in range(queues)},
            "fleet_queue_consumers": {labels_of(queue=f"q{q}"): 1.0 for q in range(queues)},
            "fleet_queue_oldest_age_seconds": {labels_of(queue=f"q{q}"): 3.0 for q in range(queues)},
            "celery_task_failed_total": {},
            "celery_task_succeeded_total": {},
        }
        for n in range(names):
            for q in range(queues):
                key = labels_of(name=f"task{n}", queue=f"q{q}")
                sample["celery_task_failed_total"][key] = float(turn)
                sample["celery_task_succeeded_total"][key] = float(turn * 100)
        history.append((turn * 30.0, sample))
    return history


def _cpu(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()  # type: ignore[operator]
        best = min(best, time.process_time() - started)
    return best


def evaluation_cpu_s(samples: int, queues: int) -> float:
    """CPU seconds of evaluate() + step() over a history holding `samples` values."""
    history = _history(samples, queues)
    config = AlertsConfig()
    return _cpu(lambda: step({}, evaluate(history, config), history[-1][0], 3600, {}))


def parse_cpu_s(series: int, every: bool = False) -> float:
    """CPU seconds of reading an exposition of `series` samples as the fleet's is made: per (task, queue) two
    counters and a runtime histogram (16 buckets, sum, count); the sampler keeps the counters (`every`: all)."""
    from worker.alert_sampler import BUILT_IN_EXPORTED, exported

    lines = []
    for i in range(series // 20):
        labels = f'name="t{i}",queue="q{i % 10}"'
        lines += [f"celery_task_failed_total{{{labels}}} {i}.0", f"celery_task_succeeded_total{{{labels}}} {i}.0"]
        lines += [f'celery_task_runtime_seconds_bucket{{{labels},le="{b}"}} {i}.0' for b in range(16)]
        lines += [
            f"celery_task_runtime_seconds_sum{{{labels}}} 1.5",
            f"celery_task_runtime_seconds_count{{{labels}}} 3",
        ]
    text = ("\n".join(lines) + "\n").encode()
    return _cpu(lambda: exported(lambda: text, None if every else BUILT_IN_EXPORTED))


def _at(i: int, rows: int) -> str:
    return "2026-12-04T23:55:00" if i >= rows - 1000 else f"2026-12-{1 + i * 3 // rows:02d}T{i % 24:02d}:00:00"


def sql_cpu_s(rows: int) -> float:
    """CPU seconds of the two 'recent rows by group' counts over tables of `rows` rows each (SQLite, indexed)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    db = sqlite3.connect(folder / "a.db")
    for table, column in (("ledger_alerts", "kind"), ("dead_letters", "queue")):
        db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, at TEXT, {column} TEXT)")
        db.execute(f"CREATE INDEX ix_{table}_at ON {table} (at)")
        db.executemany(
            f"INSERT INTO {table} (at, {column}) VALUES (?, ?)",
            # The newest 1,000 rows fall in the rule's window; the rest are older.
            ((_at(i, rows), f"k{i % 5}") for i in range(rows)),
        )
    db.commit()

    def counts() -> None:
        for table, column in (("ledger_alerts", "kind"), ("dead_letters", "queue")):
            db.execute(
                f"SELECT {column}, count(*) FROM {table} WHERE at >= ? GROUP BY {column}", ("2026-12-04T23:50:00",)
            ).fetchall()

    cost = _cpu(counts)
    db.close()
    return cost


def run(ctx: BenchContext) -> list[Row]:
    """The rows for `make bench`."""
    samples = ctx.size(1_000_000, 100_000)
    return [
        Row("alert evaluation: rules + incidents (10 queues, 1M samples)", evaluation_cpu_s(samples, 10) * 1000, "ms"),
        Row("alert evaluation: read exposition (50k series)", parse_cpu_s(samples // HISTORY) * 1000, "ms"),
        Row("alert evaluation: SQL counts (1M rows each)", sql_cpu_s(samples) * 1000, "ms"),
    ]


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=10)
    args = parser.parse_args()
    print(f"rules + incidents: {evaluation_cpu_s(args.samples, args.queues) * 1000:.1f} ms CPU")
    series = args.samples // HISTORY
    print(f"read exposition of {series} series, the rules' only: {parse_cpu_s(series) * 1000:.1f} ms CPU")
    print(f"read exposition of {series} series, every one: {parse_cpu_s(series, every=True) * 1000:.1f} ms CPU")
    print(f"SQL counts over {args.samples} rows each: {sql_cpu_s(args.samples) * 1000:.2f} ms CPU")


if __name__ == "__main__":
    main()

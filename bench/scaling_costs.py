"""What one task costs the shared servers, for docs/SCALING.md: Redis commands and database writes.

python -m bench.scaling_costs [--tasks 300] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Redis: `INFO commandstats` around each kind of task, sent and consumed one by one with its result read back;
then `redis-benchmark` on the same private server gives the commands per second it serves, hence the tasks
per second one Redis carries. Database: with --postgres, the rows inserted, updated and deleted and the
transactions committed per task (`pg_stat_user_tables`, `pg_stat_database`) in a private database created
on that server and dropped after. Counts do not depend on the host's load; the rates do.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from bench.common import BenchContext, fleet_worker, private_environment
from bench.redis_calls import per_task

# The commands a task mostly costs (bench.redis_calls), as redis-benchmark names them.
BENCHMARK_TESTS = "lpush,rpop,set,get,zadd,hset,incr"


def _workflow(app: Any) -> None:
    from bench.agents import _calculations, _workflow

    _workflow(app, _calculations())


def _batch(app: Any, size: int) -> None:
    from datetime import UTC, datetime

    from ledger.generate import generate

    events = [i["event"] for i in generate(size, 0, seed=1, now=datetime.now(UTC), prefix=f"c{uuid.uuid4().hex[:6]}")]
    app.send_task("ledger.quick_run_batch", args=[events], queue="ledger", priority=5, argsrepr="[<batch>]").get(
        timeout=300
    )


def _single(app: Any) -> None:
    from bench.ledger import _event

    app.send_task("ledger.quick_run", args=[_event(f"c-{uuid.uuid4().hex[:12]}")], queue="ledger", priority=5).get(
        timeout=60
    )


def kinds(app: Any, batch: int) -> dict[str, tuple[Any, int]]:
    """Each kind of task: how to run one, and how many units (events) one run is."""
    return {
        "fleet.ping": (lambda: app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=60), 1),
        "ledger.quick_run (one event)": (lambda: _single(app), 1),
        f"ledger.quick_run_batch ({batch} events), per event": (lambda: _batch(app, batch), batch),
        "agents workflow (5 calculations, 4 stages + chord), per run": (lambda: _workflow(app), 1),
    }


class PgCounter:
    """Rows written and transactions committed in one PostgreSQL database, read from its statistics views."""

    def __init__(self, url: str) -> None:
        self.url = url

    def read(self) -> tuple[int, int]:
        """The counts once they stop moving: each backend flushes its statistics on its own schedule."""
        last = self._read()
        for _ in range(30):
            time.sleep(1.0)
            now = self._read()
            if now == last:
                return now
            last = now
        return last

    def _read(self) -> tuple[int, int]:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_stat_force_next_flush()"))
                rows = connection.execute(
                    text("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables")
                ).scalar_one()
                commits = connection.execute(
                    text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                ).scalar_one()
        finally:
            engine.dispose()
        return int(rows), int(commits)


def redis_ops_per_second(port: int, requests: int) -> dict[str, float]:
    """redis-benchmark's requests per second for each test, 50 clients, no pipelining."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise SystemExit("redis-benchmark not found (apt-get install redis-tools)")
    out = subprocess.run(
        [binary, "-p", str(port), "-q", "-n", str(requests), "-c", "50", "-t", BENCHMARK_TESTS],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, float] = {}
    for line in out.replace("\r", "\n").splitlines():
        match = re.match(r"^(\w+)(?: \([^)]*\))?: ([\d.]+) requests per second", line.strip())
        if match:
            found[match.group(1).lower()] = float(match.group(2))
    return found


def measure(ctx: BenchContext, tasks: int, batch: int, pg: PgCounter | None) -> list[dict[str, Any]]:
    """Commands and database writes per unit of each kind of task."""
    from worker.application import app
    from worker.migrate import upgrade

    upgrade(os.environ["FLEET_DATABASE_URL"])
    results: list[dict[str, Any]] = []
    worker = fleet_worker(ctx, "costs", "agents,ledger", concurrency=2)
    try:
        for label, (run, units) in kinds(app, batch).items():
            run()  # warm: connections, caches, first-use imports
            count = max(1, tasks // units) if units > 1 else tasks
            db_before = pg.read() if pg else None
            commands: Counter[str] = per_task(ctx, run, count)
            db_after = pg.read() if pg else None
            entry: dict[str, Any] = {
                "kind": label,
                "commands": round(sum(commands.values()) / units, 2),
                "top": dict(Counter({k: round(v / units, 2) for k, v in commands.items()}).most_common(6)),
            }
            if db_before and db_after:
                entry["rows"] = round((db_after[0] - db_before[0]) / (count * units), 2)
                entry["commits"] = round((db_after[1] - db_before[1]) / (count * units), 2)
            results.append(entry)
    finally:
        worker.stop()
    return results


def _private_postgres(server_url: str) -> str:
    # psycopg directly: the fleet's SQLAlchemy listeners would read the settings before the bench sets them.
    import psycopg

    name = f"fleet_costs_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(server_url)._replace(path=f"/{name}").geturl()


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created there and dropped)")
    args = parser.parse_args()
    database = _private_postgres(args.postgres) if args.postgres else None
    if database:
        os.environ["FLEET_BENCH_DATABASE_URL"] = database
    with private_environment() as ctx:
        found = measure(ctx, args.tasks, args.batch, PgCounter(database) if database else None)
        ops = redis_ops_per_second(int(urlsplit(ctx.broker_url).port or 6379), args.requests)
    mean_ops = sum(ops.values()) / len(ops)
    sys.stdout.write(f"redis-benchmark, 50 clients, requests/s: {ops} (mean {mean_ops:,.0f})\n\n")
    sys.stdout.write(
        "| task | Redis commands per unit | one Redis carries (units/s) | DB rows written | DB commits | top commands |\n"
    )
    sys.stdout.write("|---|---|---|---|---|---|\n")
    for entry in found:
        ceiling = mean_ops / entry["commands"] if entry["commands"] else 0
        sys.stdout.write(
            f"| {entry['kind']} | {entry['commands']} | {ceiling:,.0f} | {entry.get('rows', '-')} | "
            f"{entry.get('commits', '-')} | {entry['top']} |\n"
        )


if __name__ == "__main__":
    main()

"""The run list over 100,000 stored runs: one page of a filtered query, p50/p95 (SQLite; PostgreSQL too with
FLEET_TEST_POSTGRES_URL).

python -m bench.run_history [--runs 100000] [--repeat 60]

The page is what `GET /api/v1/runs` and the console's run list ask for (gateway.services.runs.search, 50 runs
newest first), measured in process: the database's part of the answer, without HTTP.
"""

from __future__ import annotations

import argparse
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import BenchContext, Row, percentile, private_environment, render, timed

STATUSES = ["succeeded"] * 14 + ["failed", "rejected", "cancelled", "awaiting_approval", "executing"]
OWNERS = [f"{i:08x}" for i in range(20)]
WORDS = ["compute", "summarise", "invoice", "transfer", "report", "balance", "refund", "audit", "plan", "ledger"]
GOAL = "< 200 ms p95"


def seed(engine: Any, runs: int, seed_value: int = 7) -> datetime:
    """`runs` runs over the last 30 days (statuses, keys, modes and inputs mixed); the newest run's time."""
    from worker.agents.models import AgentRun

    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    table = AgentRun.__table__
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for index in range(runs):
            at = now - timedelta(seconds=(runs - index) * 30 * 86_400 / runs)
            status = rng.choice(STATUSES)
            words = " ".join(rng.choice(WORDS) for _ in range(6))
            batch.append({
                "run_id": str(uuid.UUID(int=rng.getrandbits(128))), "status": status, "queue": "agents", "priority": 5,
                "owner": rng.choice(OWNERS),
                "input_text": f"{words} #{index}",
                "request": {"input": f"{words} #{index}", "mode": rng.choice(["planner", "planner", "plan_only"]),
                            "profile": "local", "options": {}},
                "error": f"s1 (calculator:v1): division by zero #{index}" if status == "failed" else None,
                "timeline": {status: at.isoformat()}, "created_at": at, "updated_at": at, "output": None,
                "idempotency_key": None, "snapshot_id": None,
            })  # fmt: skip
            if len(batch) == 5000:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
    return now


def queries(now: datetime) -> list[tuple[str, Any]]:
    """The filters measured: what an operator asks the run list most."""
    from gateway.services.runs import RunFilter

    return [
        ("newest runs, no filter", RunFilter()),
        ("failed in the last 24 h", RunFilter(statuses=("failed",), since=now - timedelta(hours=24))),
        ("one key's runs", RunFilter(owner=OWNERS[3])),
        (
            "one key's failed runs, last 7 days",
            RunFilter(statuses=("failed",), owner=OWNERS[3], since=now - timedelta(days=7)),
        ),
        ("input text 'refund audit'", RunFilter(text="refund audit")),
        # The worst case: a text no input holds is looked for in every run (no index serves a substring).
        ("input text matching no run (every run read)", RunFilter(text="no such words")),
        ("error text, failed", RunFilter(statuses=("failed",), error="division")),
    ]


def measure(engine: Any, runs: int, repeat: int, label: str) -> list[Row]:
    """p50 and p95 of one page per filter, and of the page after it (by cursor)."""
    from gateway.services.runs import search

    now = seed(engine, runs)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.begin() as connection:
            connection.execute(text("ANALYZE agent_runs"))  # the planner's statistics, as autovacuum keeps them
    rows = []
    for name, given in queries(now):
        search(given, 50, engine=engine)  # warm the cache: the steady state is what a busy API sees
        samples = timed(lambda given=given: search(given, 50, engine=engine), repeat)
        rows.append(Row(f"run list over {runs:,} runs ({label}): {name}, p95", percentile(samples, 95), "ms",
                        goal=GOAL))  # fmt: skip
    first = search(queries(now)[1][1], 50, engine=engine)
    cursor = first["next_cursor"]
    if cursor:
        samples = timed(lambda: search(queries(now)[1][1], 50, cursor, engine=engine), repeat)
        rows.append(Row(f"run list over {runs:,} runs ({label}): next page by cursor, p95", percentile(samples, 95),
                        "ms", goal=GOAL))  # fmt: skip
    return rows


def _postgres(runs: int, repeat: int) -> list[Row]:
    import os

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from worker.db import make_engine
    from worker.migrate import upgrade

    server_url = os.environ.get("FLEET_TEST_POSTGRES_URL")
    if not server_url:
        return []
    name = f"fleet_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = make_engine(url)
        try:
            return measure(engine, runs, repeat, "PostgreSQL")
        finally:
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(ctx: BenchContext, runs: int | None = None, repeat: int | None = None) -> list[Row]:
    """SQLite always; PostgreSQL when FLEET_TEST_POSTGRES_URL is set."""
    from worker.db import get_engine
    from worker.migrate import upgrade
    from worker.settings import get_settings

    runs = runs or ctx.size(100_000, 100_000)
    repeat = repeat or ctx.size(60, 20)
    upgrade(get_settings().database_url)
    label = "PostgreSQL" if get_engine().dialect.name == "postgresql" else "SQLite"
    return measure(get_engine(), runs, repeat, label) + _postgres(runs, repeat)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args()
    with private_environment() as ctx:
        print(render(run(ctx, args.runs, args.repeat)))


if __name__ == "__main__":
    main()

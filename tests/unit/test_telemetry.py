"""Telemetry aggregates in memory and flushes one Redis hash per minute in one pipeline."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from beat.aggregates import bucket_index
from beat.config import reports_config
from worker.fleet_status import priority_lists, queue_depths
from worker.telemetry import KEY_PREFIX, MINUTES_KEY, Recorder, parse_hash


class FakeRedis:
    """Just the hash, set and list commands telemetry and queue depth use; counts pipeline round trips."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, float]] = defaultdict(dict)
        self.sets: dict[str, set[str]] = defaultdict(set)
        self.lists: dict[str, int] = {}
        self.round_trips = 0
        self._queued: list[tuple[str, tuple[Any, ...]]] = []

    def pipeline(self, transaction: bool = False) -> FakeRedis:
        return self

    def hincrbyfloat(self, key: str, field: str, value: float) -> None:
        self._queued.append(("hincr", (key, field, value)))

    def hset(self, key: str, field: str, value: float) -> None:
        self._queued.append(("hset", (key, field, value)))

    def expire(self, key: str, ttl: int) -> None:
        self._queued.append(("noop", ()))

    def sadd(self, key: str, value: Any) -> None:
        self._queued.append(("sadd", (key, str(value))))

    def llen(self, key: str) -> None:
        self._queued.append(("llen", (key,)))

    def execute(self) -> list[Any]:
        self.round_trips += 1
        out: list[Any] = []
        for op, args in self._queued:
            if op == "hincr":
                key, field, value = args
                self.hashes[key][field] = self.hashes[key].get(field, 0.0) + value
            elif op == "hset":
                self.hashes[args[0]][args[1]] = args[2]
            elif op == "sadd":
                self.sets[args[0]].add(args[1])
            elif op == "llen":
                out.append(self.lists.get(args[0], 0))
        self._queued.clear()
        return out


def _fields(fake: FakeRedis, minute: int) -> dict[str, str]:
    return {k: str(v) for k, v in fake.hashes[f"{KEY_PREFIX}{minute}"].items()}


def test_a_flush_writes_every_operation_of_the_minute_in_one_round_trip() -> None:
    # Given a recorder that flushes only when asked
    fake = FakeRedis()
    recorder = Recorder(lambda: reports_config({"flush_every_tasks": 10_000}), lambda: fake)
    recorder._pid = __import__("os").getpid()  # no flush thread in a unit test
    at = 1_800_000_030.0
    # When five pings (one failed) and a retried task are recorded, then flushed
    for n in range(5):
        recorder.record("task", "fleet.ping", "ledger", 0.002, failed=n == 0, wait=0.5, at=at)
    recorder.record("task", "ledger.quick_run", "ledger", 0.2, retried=True, at=at)
    assert recorder.flush() == 2
    # Then one round trip holds both rows of the minute, and they read back exactly
    assert fake.round_trips == 1
    minute = 1_800_000_000
    assert fake.sets[MINUTES_KEY] == {str(minute)}
    rows = {row.name: row for row in parse_hash(minute, _fields(fake, minute))}
    ping = rows["fleet.ping"]
    assert (ping.count, ping.failures, ping.retries, ping.wait_count) == (5, 1, 0, 5)
    assert ping.buckets[bucket_index(0.002)] == 5
    assert ping.wait_sum == 2.5
    assert rows["ledger.quick_run"].retries == 1


def test_a_second_flush_adds_to_the_same_minute() -> None:
    fake = FakeRedis()
    recorder = Recorder(lambda: reports_config({}), lambda: fake)
    recorder._pid = __import__("os").getpid()
    for _ in range(2):
        recorder.record("task", "fleet.ping", "agents", 0.01, at=1_800_000_000.0)
        recorder.flush()
    (row,) = parse_hash(1_800_000_000, _fields(fake, 1_800_000_000))
    assert row.count == 2 and row.runtime_max == 0.01


def test_queue_depth_counts_every_priority_sub_queue() -> None:
    fake = FakeRedis()
    fake.lists = {"ledger": 2, "ledger:3": 5, "ledger:9": 1, "agents:5": 4}
    assert priority_lists("ledger")[:2] == ["ledger", "ledger:1"]
    assert queue_depths(fake) == {"agents": 4, "ledger": 8, "reports": 0}


def test_log_lines_get_a_category_from_their_logger_unless_one_is_given() -> None:
    import logging

    from worker.log_context import CATEGORIES, ContextFilter, category_of

    assert [
        category_of(n)
        for n in ("fleet.ledger.rules", "fleet.agents", "uvicorn.error", "celery.worker", "fleet.ledgerx")
    ] == ["ledger", "agent", "api", "system", "system"]
    record = logging.makeLogRecord({"name": "fleet.audit", "msg": "x", "category": "security"})
    ContextFilter().filter(record)
    assert record.category == "security" and record.category in CATEGORIES


def test_the_api_middleware_records_latency_per_route_template() -> None:
    import asyncio

    import httpx
    from fastapi import FastAPI

    from worker import telemetry

    # Given an API with the fleet's latency middleware
    api = FastAPI()
    api.middleware("http")(telemetry.http_latency_middleware)

    @api.get("/runs/{run_id}")
    def run(run_id: str) -> dict[str, str]:
        return {"run_id": run_id}

    telemetry.RECORDER.take()

    # When two different runs are read
    async def two_reads() -> list[int]:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return [(await client.get(f"/runs/{run}")).status_code for run in ("a", "b")]

    assert asyncio.run(two_reads()) == [200, 200]
    # Then both count under the route template, not the raw path
    rows = {(kind, name): row for (_m, kind, name, _g), row in telemetry.RECORDER.take().items()}
    assert rows[("http", "GET /runs/{run_id}")][0] == 2


def test_traces_stay_off_without_an_endpoint_and_spans_are_free(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from worker import otel

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert otel.setup() is False
    with otel.span("agent.stage", **{"gen_ai.operation.name": "chat"}) as current:
        assert current is None

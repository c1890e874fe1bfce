"""Component status: broker, database, workers, beat, Flower, API; rolled up into the fleet's health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """One component's state; LIMITED means it is not configured or cannot be observed."""

    OK = "OK"
    WARNING = "WARNING"
    ERROR = "ERROR"
    LIMITED = "LIMITED"


class Health(StrEnum):
    """The whole fleet's state."""

    OK = "OK"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


# Without these nothing runs: one of them in ERROR makes the fleet CRITICAL.
ESSENTIAL = frozenset({"broker", "database", "workers"})
COMPONENTS: tuple[str, ...] = ("broker", "database", "workers", "beat", "flower", "api")


@dataclass(frozen=True, slots=True)
class Probe:
    """What the adapters observed now; None means not observed (not configured or unreachable)."""

    broker_ms: float | None
    database_ms: float | None
    workers: tuple[str, ...]
    expected_workers: int = 1
    beat_last_seen: datetime | None = None
    flower_ok: bool | None = None
    api_ok: bool | None = None
    broker_error: str = ""
    database_error: str = ""


@dataclass(frozen=True, slots=True)
class Component:
    """One component's status with a detail a person can act on and its figures."""

    name: str
    status: Status
    detail: str
    metrics: dict[str, Any] = field(default_factory=dict)


def _latency(name: str, ms: float | None, error: str, slow_ms: float) -> Component:
    if ms is None:
        return Component(name, Status.ERROR, error or "does not answer")
    status = Status.WARNING if ms > slow_ms else Status.OK
    return Component(name, status, f"answers in {ms:.1f} ms", {"latency_ms": round(ms, 2)})


def _workers(probe: Probe) -> Component:
    count = len(probe.workers)
    metrics = {"online": count, "expected": probe.expected_workers, "names": list(probe.workers)}
    if count == 0:
        return Component("workers", Status.ERROR, "no worker answers a ping", metrics)
    if count < probe.expected_workers:
        return Component("workers", Status.WARNING, f"{count} of {probe.expected_workers} workers online", metrics)
    return Component("workers", Status.OK, f"{count} online", metrics)


def _beat(last_seen: datetime | None, now: datetime, paused: bool) -> Component:
    if last_seen is None:
        return Component("beat", Status.LIMITED, "no metrics sample yet")
    age = now - last_seen
    metrics = {"last_sample_age_s": round(age.total_seconds())}
    if paused or age <= timedelta(minutes=5):
        return Component("beat", Status.OK, "collecting every minute", metrics)
    return Component("beat", Status.WARNING, f"last sample {int(age.total_seconds() // 60)} min ago", metrics)


def _optional(name: str, ok: bool | None) -> Component:
    if ok is None:
        return Component(name, Status.LIMITED, "not configured")
    return Component(name, Status.OK, "answers") if ok else Component(name, Status.ERROR, "does not answer")


def assess(probe: Probe, now: datetime, offline: bool = False) -> list[Component]:
    """Every component's status from one probe."""
    return [
        _latency("broker", probe.broker_ms, probe.broker_error, slow_ms=100),
        _latency("database", probe.database_ms, probe.database_error, slow_ms=500),
        _workers(probe),
        _beat(probe.beat_last_seen, now, offline),
        _optional("flower", probe.flower_ok),
        _optional("api", probe.api_ok),
    ]


def rollup(components: list[Component]) -> Health:
    """CRITICAL if an essential component is in ERROR, else the worst of ERROR / WARNING, else OK."""
    statuses = {c.name: c.status for c in components}
    if any(statuses.get(name) == Status.ERROR for name in ESSENTIAL):
        return Health.CRITICAL
    if Status.ERROR in statuses.values():
        return Health.ERROR
    if Status.WARNING in statuses.values():
        return Health.WARNING
    return Health.OK

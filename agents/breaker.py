"""A circuit breaker per model endpoint: closed, open after N failures in a window, half-open for one probe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

BreakerStatus = Literal["closed", "open", "half_open"]
# The numbers /metrics gives a breaker's status (a gauge): higher is worse.
STATUS_VALUE: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}


class BreakerSettings(BaseModel):
    """When a breaker opens and how long it stays open (`agents.breaker` in FLEET_CONFIG)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=3, ge=1, le=1000)
    window_s: float = Field(default=60.0, gt=0)
    reset_s: float = Field(default=30.0, gt=0)


@dataclass(frozen=True)
class BreakerState:
    """One endpoint's breaker: its status, the failure times inside the window, when it opened and when it may be
    probed (stored with the state, so any process reads the status without the writer's settings)."""

    status: BreakerStatus = "closed"
    failures: tuple[float, ...] = ()
    opened_at: float | None = None
    probe_at: float | None = None


@dataclass(frozen=True)
class Admission:
    """Whether a call may go to the endpoint now, and whether it is the half-open probe."""

    allowed: bool
    probe: bool = False


class BreakerStore(Protocol):
    """Breaker states by endpoint name; shared by every process that calls the endpoints (Redis in worker/)."""

    def load(self, name: str) -> BreakerState:
        """The endpoint's state (closed when never seen)."""
        ...

    def update(self, name: str, change: Callable[[BreakerState], BreakerState]) -> tuple[BreakerState, BreakerState]:
        """Apply `change` to the endpoint's state atomically (no other process's update lost); (before, after)."""
        ...

    def claim_probe(self, name: str, ttl_s: float) -> bool:
        """True for exactly one caller per `ttl_s`: the one that sends the half-open probe."""
        ...

    def names(self) -> list[str]:
        """Every endpoint with a stored state."""
        ...


@dataclass
class MemoryBreakers:
    """BreakerStore in a dict, for unit tests and a process without Redis."""

    states: dict[str, BreakerState] = field(default_factory=dict)
    probes: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] | None = None

    def load(self, name: str) -> BreakerState:
        """The stored state, closed by default."""
        return self.states.get(name, BreakerState())

    def update(self, name: str, change: Callable[[BreakerState], BreakerState]) -> tuple[BreakerState, BreakerState]:
        """Apply the change."""
        before = self.load(name)
        self.states[name] = change(before)
        return before, self.states[name]

    def claim_probe(self, name: str, ttl_s: float) -> bool:
        """One probe per ttl (a clock of None: every claim after the first needs a reset)."""
        now = self.clock() if self.clock else 0.0
        until = self.probes.get(name)
        if until is not None and now < until:
            return False
        self.probes[name] = now + ttl_s
        return True

    def names(self) -> list[str]:
        """Endpoints with a state."""
        return sorted(self.states)


def status_at(state: BreakerState, now: float) -> BreakerStatus:
    """What the breaker is now: an open one whose reset time passed is half-open."""
    if state.status == "open" and state.probe_at is not None and now >= state.probe_at:
        return "half_open"
    return state.status


class CircuitBreaker:
    """Decides per endpoint whether to call it, and learns from each outcome."""

    def __init__(self, settings: BreakerSettings, store: BreakerStore, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    def admit(self, name: str) -> Admission:
        """Closed: call. Open: skip. Half-open: one caller probes, the others skip."""
        state = self.store.load(name)
        status = status_at(state, self.clock())
        if status == "closed":
            return Admission(True)
        if status == "open":
            return Admission(False)
        if self.store.claim_probe(name, self.settings.reset_s):
            self.store.update(name, lambda now: replace(now, status="half_open") if now.status == "open" else now)
            return Admission(True, probe=True)
        return Admission(False)

    def succeeded(self, name: str) -> bool:
        """Close the breaker after a good answer; True when it was not closed (it closes now)."""
        if self.store.load(name) == BreakerState():
            return False  # the common case, without a write
        before, _after = self.store.update(name, lambda _state: BreakerState())
        return before.status != "closed"

    def failed(self, name: str) -> bool:
        """Count a failure (or timeout); True when this failure opens the breaker."""
        now = self.clock()
        settings = self.settings

        def count(state: BreakerState) -> BreakerState:
            recent = (*(t for t in state.failures if t > now - settings.window_s), now)
            if state.status == "half_open" or len(recent) >= settings.failures:
                return BreakerState("open", recent, opened_at=now, probe_at=now + settings.reset_s)
            return replace(state, failures=recent)

        before, after = self.store.update(name, count)
        return after.status == "open" and before.status != "open"

    def statuses(self) -> dict[str, BreakerStatus]:
        """Every known endpoint's status now (what /metrics and `agent status` show)."""
        now = self.clock()
        return {name: status_at(self.store.load(name), now) for name in self.store.names()}

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

    def save(self, name: str, state: BreakerState) -> None:
        """Replace the endpoint's state."""
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

    def save(self, name: str, state: BreakerState) -> None:
        """Store the state."""
        self.states[name] = state

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
            self.store.save(name, replace(state, status="half_open"))
            return Admission(True, probe=True)
        return Admission(False)

    def succeeded(self, name: str) -> bool:
        """Close the breaker after a good answer; True when it was not closed (it closes now)."""
        state = self.store.load(name)
        if state.status == "closed" and not state.failures:
            return False
        self.store.save(name, BreakerState())
        return state.status != "closed"

    def failed(self, name: str) -> bool:
        """Count a failure (or timeout); True when this failure opens the breaker."""
        now = self.clock()
        state = self.store.load(name)
        recent = (*(t for t in state.failures if t > now - self.settings.window_s), now)
        if state.status == "half_open" or len(recent) >= self.settings.failures:
            self.store.save(name, BreakerState("open", recent, opened_at=now, probe_at=now + self.settings.reset_s))
            return state.status != "open"
        self.store.save(name, replace(state, failures=recent))
        return False

    def statuses(self) -> dict[str, BreakerStatus]:
        """Every known endpoint's status now (what /metrics and `agent status` show)."""
        now = self.clock()
        return {name: status_at(self.store.load(name), now) for name in self.store.names()}

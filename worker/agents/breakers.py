"""Model endpoints' circuit breakers in Redis: every worker process sees (and opens) the same breaker."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import redis

from agents.breaker import BreakerSettings, BreakerState, CircuitBreaker
from worker.constants import REDIS_KEY_PREFIX
from worker.redis_client import get_redis

log = logging.getLogger("fleet.agents")
NAMES_KEY = f"{REDIS_KEY_PREFIX}agents:breakers"
# A breaker untouched this long is forgotten (its endpoint left the chain, or nothing called it for a day).
STATE_TTL_S = 24 * 3600


def state_key(name: str) -> str:
    """The Redis key holding one endpoint's breaker state (JSON)."""
    return f"{REDIS_KEY_PREFIX}agents:breaker:{name}"


class RedisBreakers:
    """BreakerStore in Redis; a Redis failure reads as a closed breaker (the call is tried, never blocked)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.client = client or get_redis()

    def load(self, name: str) -> BreakerState:
        """The stored state, closed when none or Redis fails."""
        try:
            raw = self.client.get(state_key(name))
        except redis.RedisError as exc:
            log.warning("breaker state unavailable: %s", exc, extra={"category": "agent", "endpoint": name})
            return BreakerState()
        return _parse(raw)

    def update(self, name: str, change: Callable[[BreakerState], BreakerState]) -> tuple[BreakerState, BreakerState]:
        """WATCH, read, change, MULTI/EXEC, again when another process wrote in between; a Redis failure
        changes nothing (the breaker then reads as it was)."""
        key = state_key(name)
        try:
            with self.client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)  # type: ignore[no-untyped-call]
                        before = _parse(pipe.get(key))
                        after = change(before)
                        pipe.multi()
                        pipe.set(key, _dump(after), ex=STATE_TTL_S)
                        pipe.sadd(NAMES_KEY, name)
                        pipe.execute()
                        return before, after
                    except redis.WatchError:
                        continue
        except redis.RedisError as exc:
            log.warning("breaker state not saved: %s", exc, extra={"category": "agent", "endpoint": name})
            state = self.load(name)
            return state, state

    def claim_probe(self, name: str, ttl_s: float) -> bool:
        """SET NX with a TTL: one process sends the half-open probe; a probe that dies frees it after ttl_s."""
        try:
            return bool(self.client.set(state_key(name) + ":probe", "1", nx=True, px=max(1, int(ttl_s * 1000))))
        except redis.RedisError:
            return True

    def names(self) -> list[str]:
        """Endpoints with a live state."""
        try:
            return sorted(str(n) for n in self.client.smembers(NAMES_KEY))
        except redis.RedisError:
            return []


def _parse(raw: object) -> BreakerState:
    if not raw:
        return BreakerState()
    data = json.loads(str(raw))
    return BreakerState(data["status"], tuple(data["failures"]), data.get("opened_at"), data.get("probe_at"))


def _dump(state: BreakerState) -> str:
    return json.dumps({"status": state.status, "failures": list(state.failures), "opened_at": state.opened_at,
                       "probe_at": state.probe_at})  # fmt: skip


def breaker(settings: BreakerSettings, client: redis.Redis | None = None) -> CircuitBreaker:
    """The fleet's shared breaker (wall-clock time: processes on several machines compare times)."""
    return CircuitBreaker(settings, RedisBreakers(client), time.time)


def statuses(settings: BreakerSettings, client: redis.Redis | None = None) -> dict[str, str]:
    """Every endpoint's breaker status now: closed, half_open or open."""
    return dict(breaker(settings, client).statuses())

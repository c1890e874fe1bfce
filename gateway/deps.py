"""Dependencies of the routes as `Annotated` aliases: who is calling, with which scope, within its limit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from gateway.auth import authenticate
from gateway.config import GatewayConfig, get_gateway_config
from gateway.keys import ANONYMOUS, Principal
from gateway.problems import ApiProblem
from gateway.ratelimit import RateLimiter
from gateway.waits import Slot, WaitSlots
from worker.redis_client import get_redis

log = logging.getLogger("fleet.api")

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer fleet_...`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in X-API-Key")

# Told to a client refused because a store is down: worth a retry soon.
RETRY_LATER = {"Retry-After": "5"}
Config = Annotated[GatewayConfig, Depends(get_gateway_config)]


def _limiter(config: GatewayConfig) -> RateLimiter:
    return RateLimiter(get_redis(), config.rate_window_s)


def client_host(request: Request) -> str:
    """The client's address (a forwarded one only from a configured trusted proxy)."""
    return request.client.host if request.client else ""


def principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    _header_key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """The caller, authenticated by its key (the two security schemes document where the key goes)."""
    found = authenticate(request.headers, client_host(request), request.url.path)
    if found is not ANONYMOUS:
        request.state.principal = found
    return found


def caller_id(who: Principal, host: str) -> str:
    """Whose share a request counts against: its key, or its address while the API is open."""
    return who.key_id if who is not ANONYMOUS else "anonymous:" + host


def admit(who: Principal, scope: str, config: GatewayConfig, client_host: str) -> dict[str, str]:
    """403 unless the caller holds `scope`, 429 past its rate limit; the RateLimit-* headers otherwise."""
    if not who.allows(scope):
        raise ApiProblem(403, "forbidden", f"this key lacks the {scope!r} scope", required_scope=scope)
    rate_key = caller_id(who, client_host)
    try:
        decision = _limiter(config).hit(rate_key, who.rate_limit or config.rate_limit)
    except RedisError as exc:
        # Redis's own words (addresses, key types, scripts) go to the log; the client gets the stable code.
        log.warning("rate limit store failed: %s", exc, extra={"category": "api", "key_id": who.key_id})
        raise ApiProblem(503, "broker_unavailable", "the rate limit store is unavailable", RETRY_LATER) from exc
    if not decision.allowed:
        detail = f"rate limit of {decision.limit} requests per {config.rate_window_s} s exceeded"
        raise ApiProblem(429, "rate_limited", detail, decision.headers())
    return decision.headers()


def require(scope: str) -> Callable[..., Principal]:
    """A dependency: the caller must hold `scope` and be within its rate limit."""

    def check(request: Request, config: Config, who: Annotated[Principal, Depends(principal)]) -> Principal:
        host = client_host(request)
        # Added to the response by CallAuditMiddleware, whatever kind of response the route returns.
        request.state.rate_headers = admit(who, scope, config, host)
        # Stored with an Idempotency-Key's response: a replay must hold the same scope.
        request.state.required_scope = scope
        return who

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


@dataclass(frozen=True)
class WaitGate:
    """The caller's way to the process's wait slots (gateway.waits)."""

    slots: WaitSlots
    caller: str

    def slot(self) -> Slot:
        """A place for one waiting request; 429/503 with Retry-After past the bounds."""
        return self.slots.acquire(self.caller)


def wait_gate(request: Request, who: Annotated[Principal, Depends(principal)]) -> WaitGate:
    """The wait slots of this API process, for this caller."""
    return WaitGate(request.app.state.waits, caller_id(who, client_host(request)))


def wait_slot(gate: Annotated[WaitGate, Depends(wait_gate)], wait: bool = False) -> Iterator[Slot | None]:
    """With `?wait=true`, a wait slot held until the route returns (429/503 past the bounds); else None."""
    if not wait:
        yield None
        return
    with gate.slot() as slot:
        yield slot


Waits = Annotated[WaitGate, Depends(wait_gate)]
# Released when the route function returns, before the response is sent (scope="function").
WaitSlot = Annotated[Slot | None, Depends(wait_slot, scope="function")]
ReadKey = Annotated[Principal, Depends(require("read"))]
RunKey = Annotated[Principal, Depends(require("run"))]
LedgerWriteKey = Annotated[Principal, Depends(require("ledger:write"))]
OperatorKey = Annotated[Principal, Depends(require("operator"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]

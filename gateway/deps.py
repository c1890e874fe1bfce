"""Dependencies of the routes as `Annotated` aliases: who is calling, with which scope, within its limit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from gateway.config import GatewayConfig, get_gateway_config
from gateway.keys import ANONYMOUS, Principal
from gateway.problems import ApiProblem
from gateway.ratelimit import RateLimiter
from gateway.services import keys as key_service
from worker.redis_client import get_redis

log = logging.getLogger("fleet.api")

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer fleet_...`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in X-API-Key")

Config = Annotated[GatewayConfig, Depends(get_gateway_config)]


def _limiter(config: GatewayConfig) -> RateLimiter:
    return RateLimiter(get_redis(), config.rate_window_s)


def token_of(headers: Mapping[str, str]) -> str | None:
    """The presented API key: `Authorization: Bearer <key>` first, else `X-API-Key` (as the routes read it)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return headers.get("x-api-key") or None


def authenticate(token: str | None) -> Principal:
    """The caller a token belongs to; anonymous (allowed everything) only while no key exists, else 401."""
    if not token:
        if not key_service.keys_exist():
            return ANONYMOUS
        raise ApiProblem(401, "unauthorized", "an API key is required", {"WWW-Authenticate": "Bearer"})
    found = key_service.authenticate(token)
    if found is None:
        raise ApiProblem(401, "unauthorized", "the API key is unknown or revoked", {"WWW-Authenticate": "Bearer"})
    return found


def principal(
    request: Request,
    config: Config,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """The caller, authenticated by its key."""
    token = credentials.credentials if credentials else header_key
    found = authenticate(token)
    if token:
        request.state.principal = found
    return found


def admit(who: Principal, scope: str, config: GatewayConfig, client_host: str) -> dict[str, str]:
    """403 unless the caller holds `scope`, 429 past its rate limit; the RateLimit-* headers otherwise."""
    if not who.allows(scope):
        raise ApiProblem(403, "forbidden", f"this key lacks the {scope!r} scope", required_scope=scope)
    rate_key = who.key_id if who is not ANONYMOUS else "anonymous:" + client_host
    try:
        decision = _limiter(config).hit(rate_key, who.rate_limit or config.rate_limit)
    except RedisError as exc:
        raise ApiProblem(503, "broker_unavailable", f"rate limit store unavailable: {exc}") from exc
    if not decision.allowed:
        detail = f"rate limit of {decision.limit} requests per {config.rate_window_s} s exceeded"
        raise ApiProblem(429, "rate_limited", detail, decision.headers())
    return decision.headers()


def require(scope: str) -> Callable[..., Principal]:
    """A dependency: the caller must hold `scope` and be within its rate limit."""

    def check(request: Request, config: Config, who: Annotated[Principal, Depends(principal)]) -> Principal:
        host = request.client.host if request.client else ""
        # Added to the response by CallAuditMiddleware, whatever kind of response the route returns.
        request.state.rate_headers = admit(who, scope, config, host)
        # Stored with an Idempotency-Key's response: a replay must hold the same scope.
        request.state.required_scope = scope
        return who

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


ReadKey = Annotated[Principal, Depends(require("read"))]
RunKey = Annotated[Principal, Depends(require("run"))]
LedgerWriteKey = Annotated[Principal, Depends(require("ledger:write"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]

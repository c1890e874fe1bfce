"""Health probes: open without a key, for orchestrators and load balancers.

Readiness costs the broker a ping per queue, so its answer is shared by every caller for
`gateway.ready_cache_s` and each address may ask `gateway.health_rate_limit` times per rate window. An
anonymous caller (once keys exist) is told each component's status only; a `read` key also sees the
details (worker host names, migration heads, latencies).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from gateway.auth import authenticate, token_of
from gateway.config import get_gateway_config
from gateway.deps import Config, client_host
from gateway.problems import ApiProblem
from gateway.ratelimit import KEY_PREFIX, RateLimiter
from gateway.responses import Health, Live, problems
from gateway.services import health
from gateway.services.keys import keys_exist
from worker.redis_client import get_redis

log = logging.getLogger("fleet.api")
router = APIRouter(prefix="/health", tags=["health"])

# Probes are open: no 401 nor 403, but an address past gateway.health_rate_limit gets 429.
HEALTH_RESPONSES = problems(429)
READY = health.SharedProbe(lambda: health.readiness(get_gateway_config().ready_timeout_s))


def _startup() -> health.Answer:
    ok, component = health.migrations()
    return ok, [component]


STARTUP = health.SharedProbe(_startup)


@router.get("/live", response_model=Live)
async def live() -> dict[str, str]:
    """The API process is up; answered on the event loop, never behind requests that hold worker threads."""
    return {"status": "ok"}


def shows_details(request: Request) -> bool:
    """Whether the caller may see the components' details: a `read` key, or no key configured at all."""
    if not (token_of(request.headers) or request.headers.get("authorization")):
        return not keys_exist()
    try:
        return authenticate(request.headers, client_host(request), request.url.path).allows("read")
    except ApiProblem:
        return False  # a probe with a bad key still learns the status, nothing more


def admit_probe(request: Request, config: Config) -> None:
    """429 past the address's probe limit; a broker that cannot count does not stop a probe."""
    host = client_host(request)
    try:
        decision = RateLimiter(get_redis(), config.rate_window_s, KEY_PREFIX + "health:").hit(
            host, config.health_rate_limit
        )
    except RedisError as exc:
        log.warning("health rate limit unavailable: %s", exc, extra={"category": "api"})
        return
    if not decision.allowed:
        detail = f"health probes are limited to {decision.limit} per {config.rate_window_s} s per address"
        raise ApiProblem(429, "rate_limited", detail, decision.headers())


def answer(request: Request, probe: health.SharedProbe, config: Config) -> tuple[int, str, list[dict[str, Any]]]:
    """The shared probe's answer as the caller may see it: HTTP status, overall status, components."""
    admit_probe(request, config)
    ok, components = probe.get(config.ready_cache_s)
    details = shows_details(request)
    return (200 if ok else 503), ("ok" if ok else "error"), [c.as_dict(details) for c in components]


def _respond(status: int, overall: str, components: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"status": overall, "components": components}, status_code=status)


@router.get(
    "/ready",
    response_model=Health,
    responses=HEALTH_RESPONSES | {503: {"model": Health, "description": "a component is down"}},
)
def ready(request: Request, config: Config) -> JSONResponse:
    """Broker and database answer, and a worker on each queue answers fleet.ping within the timeout."""
    return _respond(*answer(request, READY, config))


@router.get(
    "/startup",
    response_model=Health,
    responses=HEALTH_RESPONSES | {503: {"model": Health, "description": "migrations not at head"}},
)
def startup(request: Request, config: Config) -> JSONResponse:
    """The database is migrated to every head revision."""
    return _respond(*answer(request, STARTUP, config))

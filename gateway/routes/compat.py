"""Routes kept for older clients; each answers from the same services as its /api/v1 counterpart."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import Config
from gateway.services import health

router = APIRouter(prefix="/api", tags=["compatibility"])


@router.get("/health", responses={503: {"description": "a component is down"}})
def legacy_health(config: Config) -> JSONResponse:
    """Same answer as /health/ready, open like it (older load balancers probe it without a key)."""
    ok, components = health.readiness(config.ready_timeout_s)
    body = {"status": "ok" if ok else "error", "components": {c.name: c.as_dict() for c in components}}
    return JSONResponse(body, status_code=200 if ok else 503)

"""Health probes: open without a key, for orchestrators and load balancers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import Config
from gateway.services import health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
def live() -> dict[str, str]:
    """The API process is up."""
    return {"status": "ok"}


def _answer(ok: bool, components: list[health.Component]) -> JSONResponse:
    body: dict[str, Any] = {"status": "ok" if ok else "error", "components": [c.as_dict() for c in components]}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/ready", responses={503: {"description": "a component is down"}})
def ready(config: Config) -> JSONResponse:
    """Broker and database answer, and a worker on each queue answers fleet.ping within the timeout."""
    return _answer(*health.readiness(config.ready_timeout_s))


@router.get("/startup", responses={503: {"description": "migrations not at head"}})
def startup() -> JSONResponse:
    """The database is migrated to every head revision."""
    ok, component = health.migrations()
    return _answer(ok, [component])

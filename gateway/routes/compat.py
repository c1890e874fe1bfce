"""Routes kept for older clients; each answers from the same services as its /api/v1 counterpart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from agents.models import WorkflowRequest
from gateway.deps import Config, ReadKey, RunKey
from gateway.routes.agents import accepted
from gateway.services import agents, health

router = APIRouter(prefix="/api", tags=["compatibility"])


@router.get("/health", responses={503: {"description": "a component is down"}})
def legacy_health(config: Config) -> JSONResponse:
    """Same answer as /health/ready, open like it (older load balancers probe it without a key)."""
    ok, components = health.readiness(config.ready_timeout_s)
    body = {"status": "ok" if ok else "error", "components": {c.name: c.as_dict() for c in components}}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.post("/workflow", status_code=202)
def legacy_workflow(request: WorkflowRequest, who: RunKey) -> JSONResponse:
    """Same as POST /api/v1/agent/run without waiting."""
    return accepted(agents.submit(request, who.granted))


@router.get("/workflow/{run_id}")
def legacy_workflow_status(
    run_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")], _who: ReadKey
) -> dict[str, Any]:
    """Same as GET /api/v1/agent/status/{run_id}."""
    return agents.run_status(run_id)

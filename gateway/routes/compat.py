"""Routes kept for older clients; each answers from the same services as its /api/v1 counterpart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from agents.models import WorkflowRequest
from gateway.deps import Config, ReadKey, RunKey
from gateway.responses import KEYED, Accepted, LegacyHealth, RunRecord, problems
from gateway.routes import health as probes
from gateway.routes.agents import accepted, owned
from gateway.services import agents

router = APIRouter(prefix="/api", tags=["compatibility"])


@router.get(
    "/health",
    response_model=LegacyHealth,
    responses={503: {"model": LegacyHealth, "description": "a component is down"}, **problems(429)},
)
def legacy_health(request: Request, config: Config) -> JSONResponse:
    """Same answer as /health/ready, open like it (older load balancers probe it without a key)."""
    status, overall, components = probes.answer(request, probes.READY, config)
    body = {"status": overall, "components": {c["name"]: c for c in components}}
    return JSONResponse(body, status_code=status)


@router.post("/workflow", status_code=202, response_model=Accepted, responses=problems(*KEYED, 409, 413, 422))
def legacy_workflow(request: WorkflowRequest, who: RunKey) -> JSONResponse:
    """Same as POST /api/v1/agent/run without waiting."""
    return accepted(agents.submit(request, who.granted, owner=who.key_id))


@router.get("/workflow/{run_id}", response_model=RunRecord, responses=problems(*KEYED, 404, 422))
def legacy_workflow_status(
    run_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")], who: ReadKey
) -> dict[str, Any]:
    """Same as GET /api/v1/agent/status/{run_id}."""
    return owned(run_id, who)

"""Fleet-level work: ping a queue to learn that a worker serves it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Header, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import Config, RunKey, Waits
from gateway.responses import KEYED, PingAnswer, problems
from gateway.services import health

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=problems(*KEYED))


class PingRequest(BaseModel):
    """Which queue to ping, at which priority, and how long to wait for the answer."""

    model_config = ConfigDict(extra="forbid")

    queue: Literal["agents", "ledger", "reports"]
    priority: int = Field(default=0, ge=0, le=9)
    wait_s: float = Field(default=5.0, ge=0, le=30)


@router.post("/ping", status_code=status.HTTP_201_CREATED, response_model=PingAnswer, responses=problems(409, 413, 422))
def ping(
    request: PingRequest,
    config: Config,
    _who: RunKey,
    waits: Waits,
    x_correlation_id: str | None = Header(default=None, max_length=128),
) -> dict[str, Any]:
    """Send fleet.ping to a queue; the answer names the worker that took it."""
    wait_s = min(request.wait_s, config.wait_timeout_s)
    if wait_s <= 0:
        return health.ping_queue(request.queue, request.priority, x_correlation_id, wait_s)
    with waits.slot():
        return health.ping_queue(request.queue, request.priority, x_correlation_id, wait_s)

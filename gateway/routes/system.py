"""The API's own views of the fleet: settings (masked) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.deps import AdminKey, ReadKey
from gateway.responses import KEYED, MaskedSettings, problems
from worker.application import get_app
from worker.metrics import render_latest
from worker.settings import get_settings

router = APIRouter(tags=["system"], responses=problems(*KEYED))


@router.get("/api/v1/config", response_model=MaskedSettings)
def config(_who: AdminKey) -> dict[str, Any]:
    """The fleet's settings with secrets and URL passwords masked."""
    return get_settings().masked()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}
    },
)
def metrics(_who: ReadKey) -> Response:
    """Prometheus metrics of every fleet process (multiprocess-safe) and the broker's live gauges."""
    body, content_type = render_latest(get_app())
    return Response(body, media_type=content_type)

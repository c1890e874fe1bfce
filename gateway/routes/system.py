"""The API's own views of the fleet: settings (masked) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import AdminKey, ReadKey
from worker.settings import get_settings

router = APIRouter(tags=["system"])


@router.get("/api/v1/config")
def config(_who: AdminKey) -> dict[str, Any]:
    """The fleet's settings with secrets and URL passwords masked."""
    return get_settings().masked()


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(_who: ReadKey) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

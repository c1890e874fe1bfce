"""The API application's wiring: CORS from the gateway settings, the routes it documents."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from gateway import api
from gateway.config import GatewayConfig


def call(app: Any, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    """One request to the ASGI app in this process (no lifespan, no network)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.request(method, path, headers=headers)

    return anyio.run(go)


def test_cors_preflight_is_answered_for_a_configured_origin_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an API configured with one allowed origin
    monkeypatch.setattr(api, "get_gateway_config", lambda: GatewayConfig(cors_origins=["https://ops.example"]))
    app = api.create_app()
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
    # When browsers ask from that origin and from another
    allowed = call(app, "OPTIONS", "/api/v1/ping", {"Origin": "https://ops.example", **preflight})
    refused = call(app, "OPTIONS", "/api/v1/ping", {"Origin": "https://evil.example", **preflight})
    # Then only the configured one is allowed
    assert allowed.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-origin" not in refused.headers


def test_without_cors_origins_no_cors_headers_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "get_gateway_config", lambda: GatewayConfig())
    answer = call(api.create_app(), "GET", "/health/live", {"Origin": "https://ops.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_the_openapi_document_lists_every_area_of_the_api() -> None:
    paths = api.create_app().openapi()["paths"]
    for path in (
        "/health/ready",
        "/api/v1/agent/run/stream",
        "/api/v1/tools/{tool_id}/execute",
        "/api/v1/ledger/events",
        "/api/v1/reports/latest",
        "/api/v1/briefing",
        "/api/workflow",
        "/metrics",
    ):
        assert path in paths

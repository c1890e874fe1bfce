"""The HTTP API (FastAPI): `agent api` serves `create_app()` with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import SQLAlchemyError

from gateway import problems, responses
from gateway.audit import AuditBuffer
from gateway.config import get_gateway_config
from gateway.console import actions as console_actions
from gateway.console import pages as console_pages
from gateway.console.context import HERE as CONSOLE_DIR
from gateway.console.context import SignInRequired
from gateway.correlation import CorrelationMiddleware
from gateway.idempotency import IdempotencyMiddleware
from gateway.middleware import BodyLimitMiddleware, CallAuditMiddleware
from gateway.routes import (
    agents,
    approvals,
    compat,
    conversations,
    fleet,
    health,
    ledger,
    operations,
    reports,
    runs,
    schedules,
    system,
)
from gateway.routes import alerts as alert_routes
from gateway.services.keys import key_cache, keys_exist
from gateway.tracing import TracingMiddleware
from gateway.waits import WaitSlots
from worker import alerts, otel
from worker import logging as fleet_logging
from worker.application import get_app
from worker.redis_client import get_redis
from worker.telemetry import http_latency_middleware

log = logging.getLogger("fleet.api")

# Where the documentation pages' scripts and styles are served (open, like /docs).
DOCS_STATIC = "/docs-static"
# How often buffered audit records are written.
AUDIT_FLUSH_S = 1.0
ROUTERS = (
    health.router,
    system.router,
    fleet.router,
    agents.router,
    conversations.router,
    ledger.router,
    reports.router,
    schedules.router,
    alert_routes.router,
    runs.router,
    approvals.router,
    operations.router,
    compat.router,
    console_pages.router,
    console_actions.router,
)
# The console's stylesheet and script, served by the API itself (no CDN: the console works offline).
CONSOLE_STATIC = "/console/static"


def announce_auth_mode() -> None:
    """Say loudly, at start-up, when the API is open because no key exists."""
    try:
        exists = keys_exist()
    except SQLAlchemyError as exc:
        log.warning(
            "cannot tell whether API keys exist (%s); run `agent db upgrade`", exc, extra={"category": "security"}
        )
        return
    if exists:
        log.info("API keys are configured: every endpoint but /health/* requires one", extra={"category": "security"})
    else:
        log.warning(
            "NO API KEYS CONFIGURED: the API is OPEN to anyone who can reach it (development mode); "
            "create one with `agent keys create --scope admin --name ops` or set FLEET_API_KEYS",
            extra={"category": "security"},
        )


async def _flush_periodically(audit: AuditBuffer) -> None:
    while True:
        await asyncio.sleep(AUDIT_FLUSH_S)
        try:
            await anyio.to_thread.run_sync(audit.flush)
        except SQLAlchemyError as exc:
            log.error("audit flush failed: %s", exc, extra={"category": "audit"})


async def _sign_in(_request: Request, _exc: Exception) -> RedirectResponse:
    """A console page without a session: to the sign-in form."""
    return RedirectResponse("/console/login", status_code=303)


def create_app() -> FastAPI:
    """The API application with every route registered."""
    if not fleet_logging.configured():
        # A uvicorn worker process (`agent api --workers N`) starts afresh, without the parent's logging: JSON
        # lines to a file of its own (one per process: rotating one file from several processes loses lines).
        fleet_logging.configure_process(f"api-{os.getpid()}")
    # The API sends tasks: the fleet's app, with its codec, correlation ids and telemetry, is built now.
    get_app()
    config = get_gateway_config()
    key_cache.ttl_s = config.key_cache_s
    audit = AuditBuffer()

    @contextlib.asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        announce_auth_mode()
        flusher = asyncio.create_task(_flush_periodically(audit))
        alerts.start("api")  # the API contends for the alert evaluator's lease like every fleet process
        try:
            yield
        finally:
            alerts.stop()
            flusher.cancel()
            await anyio.to_thread.run_sync(audit.flush)

    # /docs and /redoc load Swagger UI and ReDoc from this package's own copies, not a CDN: they work offline.
    api = FastAPIOffline(title="Agent Fleet", version="0.1.0", lifespan=lifespan, static_url=DOCS_STATIC)
    for router in ROUTERS:
        api.include_router(router)
    document = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = responses.problem_media(document())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    # One handler, registered for each root it maps: an error left to the catch-all `Exception` entry
    # would be answered, then re-raised by Starlette, and the client's keep-alive connection dropped.
    api.mount(CONSOLE_STATIC, StaticFiles(directory=CONSOLE_DIR / "static"), name="console-static")
    api.add_exception_handler(SignInRequired, _sign_in)
    for error in (*problems.HANDLED, *problems.DOMAIN_ERRORS):
        api.add_exception_handler(error, problems.handle)
    # Added innermost first: CORS sees the request first, then the body limit, audit, idempotency, latency.
    # Latency per route template for Prometheus and the daily report (the reports domain's recorder).
    api.middleware("http")(http_latency_middleware)
    api.add_middleware(IdempotencyMiddleware, redis_factory=get_redis, ttl_s=config.idempotency_ttl_s)
    api.add_middleware(CallAuditMiddleware, audit=audit)
    api.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    api.add_middleware(CorrelationMiddleware)  # outside the body limit: even a 413 carries the id
    # OTEL_EXPORTER_OTLP_ENDPOINT set: a server span per request (FastAPI's own where it has them).
    if otel.setup("agent-fleet-api") and importlib.util.find_spec("fastapi.telemetry") is None:
        api.add_middleware(TracingMiddleware)
    if config.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
        )
    api.state.audit = audit
    api.state.waits = WaitSlots(
        config.max_waits_per_key, config.max_waits, retry_after_s=min(config.wait_timeout_s, 30)
    )
    return api

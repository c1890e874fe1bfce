"""The `gateway` section of FLEET_CONFIG, validated at first use."""

from __future__ import annotations

import functools

from pydantic import BaseModel, ConfigDict, Field

from config_sections import validate_section
from worker.errors import SettingsError
from worker.settings import get_settings


class GatewayConfig(BaseModel):
    """Settings of the HTTP API; every key is documented in docs/gateway.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Requests per key per window; a key created with its own limit overrides it.
    rate_limit: int = Field(default=600, ge=1)
    rate_window_s: int = Field(default=60, ge=1)
    # Largest request body accepted, checked on Content-Length and on the bytes actually streamed.
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    # Origins allowed by CORS; empty disables the CORS middleware.
    cors_origins: list[str] = Field(default_factory=list)
    # How long a response stays replayable under its Idempotency-Key.
    idempotency_ttl_s: int = Field(default=86_400, ge=1)
    # /health/ready waits this long for each queue's worker to answer fleet.ping.
    ready_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # `?wait=true` on a run waits at most this long before answering 202 with the run id.
    wait_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # One SSE response follows a run at most this long; the client then reconnects with Last-Event-ID.
    stream_timeout_s: float = Field(default=300.0, gt=0, le=3600)
    # A key's lookup is cached this long: a revoked key stops working within this delay.
    key_cache_s: float = Field(default=5.0, ge=0, le=300)


def parse_config(raw: dict[str, object]) -> GatewayConfig:
    """Validate a `gateway` section; SettingsError names the failing key."""
    return validate_section(GatewayConfig, "gateway", raw, SettingsError)


@functools.cache
def get_gateway_config() -> GatewayConfig:
    """The process-wide gateway settings."""
    return parse_config(get_settings().section("gateway"))

"""The `gateway` section of FLEET_CONFIG, validated at first use."""

from __future__ import annotations

import functools
import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    # One readiness answer (three pings) is shared by every caller this long.
    ready_cache_s: float = Field(default=5.0, ge=0, le=300)
    # Calls of /health/ready, /health/startup and /api/health per address per rate window.
    health_rate_limit: int = Field(default=60, ge=1)
    # `?wait=true` on a run waits at most this long before answering 202 with the run id.
    wait_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Requests waiting at once (`?wait=true`, ping answers, event streams) per key and per API process: each
    # holds one of the process's 40 worker threads while it waits, so the total stays well below 40.
    max_waits_per_key: int = Field(default=8, ge=1, le=36)
    max_waits: int = Field(default=24, ge=1, le=36)
    # One SSE response follows a run at most this long; the client then reconnects with Last-Event-ID.
    stream_timeout_s: float = Field(default=300.0, gt=0, le=3600)
    # Failed authentications per client address per rate window; past it, that address gets 429 until it ends.
    auth_failure_limit: int = Field(default=20, ge=1)
    # Reverse proxies (addresses or CIDR networks; "*" for any) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed. Empty (the default): forwarded headers are ignored and a client is the address that connected,
    # so no client can pick the address its per-address limits are counted against.
    trusted_proxies: list[str] = Field(default_factory=list, max_length=100)
    # A key's lookup is cached this long: a revoked key stops working within this delay.
    key_cache_s: float = Field(default=5.0, ge=0, le=300)
    # Where the console's "Workers" link points: Flower, as the operator's browser reaches it.
    flower_url: str = Field(default="http://127.0.0.1:5555", max_length=500, pattern=r"^https?://")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as exc:
                    raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from exc
        return value


def parse_config(raw: dict[str, object]) -> GatewayConfig:
    """Validate a `gateway` section; SettingsError names the failing key."""
    return validate_section(GatewayConfig, "gateway", raw, SettingsError)


@functools.cache
def get_gateway_config() -> GatewayConfig:
    """The process-wide gateway settings."""
    return parse_config(get_settings().section("gateway"))

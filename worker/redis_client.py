"""A Redis client on the broker's server, for the fleet's own keys (cache, progress, rate limits)."""

from __future__ import annotations

import functools

import redis

from worker.settings import get_settings


@functools.cache
def get_redis() -> redis.Redis:
    """The process-wide client, decoding replies as text."""
    return redis.Redis.from_url(get_settings().broker_url, decode_responses=True, health_check_interval=30)

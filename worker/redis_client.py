"""Redis clients on the broker's server, for the fleet's own keys (cache, progress, rate limits, locks).

Every client is made by `client_for`: a plain or TLS (`rediss://`) server, or the master that Sentinels name.
"""

from __future__ import annotations

import functools
from typing import Any

import redis
from redis.sentinel import Sentinel

from worker.redis_urls import is_sentinel, parse_sentinel
from worker.settings import Settings, get_settings


def sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """Options of the connections to the Sentinels themselves (their own password, when they have one)."""
    if settings.sentinel_password is None:
        return {}
    return {"password": settings.sentinel_password.get_secret_value()}


def client_for(url: str, settings: Settings | None = None, **options: Any) -> redis.Redis:
    """A client for the URL: the Sentinels' current master for `sentinel://`, with TLS for `rediss://`."""
    settings = settings or get_settings()
    if is_sentinel(url):
        target = parse_sentinel(url)
        timeouts = {k: v for k, v in options.items() if k in {"socket_timeout", "socket_connect_timeout"}}
        sentinel = Sentinel(
            list(target.nodes),
            sentinel_kwargs={**timeouts, **sentinel_kwargs(settings)},
            username=target.username,
            password=target.password,
            db=target.db,
        )
        master: redis.Redis = sentinel.master_for(settings.sentinel_master or "", **options)
        return master
    return redis.Redis.from_url(url, **(settings.redis_tls(url) or {}), **options)


@functools.cache
def get_redis() -> redis.Redis:
    """The process-wide client, decoding replies as text."""
    return client_for(get_settings().broker_url, decode_responses=True, health_check_interval=30)


def celery_options(settings: Settings) -> dict[str, Any]:
    """Celery, kombu and RedBeat settings for where Redis is: Sentinel master name, TLS options, RedBeat's URL."""
    out: dict[str, Any] = {"broker": {}, "backend": {}, "redbeat_redis_url": settings.broker_url, "redbeat": {}}
    if settings.sentinel_master:
        sentinel = {"master_name": settings.sentinel_master, "sentinel_kwargs": sentinel_kwargs(settings)}
        if is_sentinel(settings.broker_url):
            out["broker"] = dict(sentinel)
            target = parse_sentinel(settings.broker_url)
            # RedBeat's own Sentinel client: its URL only has to start with redis-sentinel.
            out["redbeat_redis_url"] = "redis-sentinel://"
            out["redbeat"] = {
                "sentinels": list(target.nodes),
                "service_name": settings.sentinel_master,
                "password": target.password,
                "username": target.username,
                "db": target.db,
                "sentinel_kwargs": sentinel_kwargs(settings),
            }
        if is_sentinel(settings.backend_url):
            out["backend"] = dict(sentinel)
    out["broker_use_ssl"] = settings.redis_tls(settings.broker_url)
    out["backend_use_ssl"] = settings.redis_tls(settings.backend_url)
    return out

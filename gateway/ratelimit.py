"""A per-key fixed-window rate limit held in Redis (one Lua call per request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.constants import REDIS_KEY_PREFIX

# INCR the window's counter, start its expiry on the first hit, return the count and seconds left.
_FIXED_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""
KEY_PREFIX = REDIS_KEY_PREFIX + "ratelimit:"


@dataclass(frozen=True)
class Decision:
    """Whether a call may proceed, and what the client is told in headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """RateLimit-* headers, plus Retry-After when refused."""
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.reset_s))
        return out


class RateLimiter:
    """Counts calls per key in a fixed window of `window_s` seconds (Redis keys `prefix` + key)."""

    def __init__(self, redis: Any, window_s: int, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis
        self.window_s = window_s
        self.prefix = prefix
        self._script = redis.register_script(_FIXED_WINDOW)

    def hit(self, key_id: str, limit: int) -> Decision:
        """Count one call for the key and decide."""
        count, ttl = self._script(keys=[self.prefix + key_id], args=[self.window_s])
        count, ttl = int(count), int(ttl)
        return Decision(allowed=count <= limit, limit=limit, remaining=max(0, limit - count), reset_s=ttl)

    def exceeded(self, key_id: str, limit: int) -> int:
        """Seconds until the key's window ends when it has used up `limit` (counting nothing), else 0."""
        key = self.prefix + key_id
        count, ttl = self.redis.pipeline(transaction=False).get(key).ttl(key).execute()
        return max(1, int(ttl)) if count is not None and int(count) >= limit else 0

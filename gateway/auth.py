"""Who is calling: the API key a request presents, and what a failed authentication costs the client.

A failure is counted (Prometheus `fleet_api_auth_failures_total`), logged in category `security` (the
client's address and the key's visible id, never the token), and counted per client address: past
`gateway.auth_failure_limit` failures in a rate window, that address gets 429 until the window ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.exceptions import RedisError

from gateway.config import get_gateway_config
from gateway.keys import ANONYMOUS, Principal, prefix_of
from gateway.problems import ApiProblem
from gateway.ratelimit import RateLimiter
from gateway.services import keys as key_service
from worker.constants import REDIS_KEY_PREFIX
from worker.metrics import API_AUTH_FAILURES
from worker.redis_client import get_redis

log = logging.getLogger("fleet.api")

FAILURE_PREFIX = REDIS_KEY_PREFIX + "authfail:"
CHALLENGE = {"WWW-Authenticate": "Bearer"}
SCHEME_HINT = "send the key as 'Authorization: Bearer <key>' (the word Bearer, a space, the key) or in X-API-Key"


def token_of(headers: Mapping[str, str]) -> str | None:
    """The presented API key: `Authorization: Bearer <key>` first, else `X-API-Key`."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


def _throttle() -> RateLimiter:
    return RateLimiter(get_redis(), get_gateway_config().rate_window_s, prefix=FAILURE_PREFIX)


def _failed(reason: str, client: str, path: str, token: str | None, record: bool = True) -> None:
    """Count, log and (with `record`) charge the client one failure."""
    API_AUTH_FAILURES.labels(reason).inc()
    key_id = prefix_of(token) if token else None
    extra = {"category": "security", "reason": reason, "client": client, "path": path, "key_id": key_id}
    log.warning("authentication failed (%s) from %s", reason, client or "unknown client", extra=extra)
    if record:
        try:
            _throttle().hit(client, get_gateway_config().auth_failure_limit)
        except RedisError as exc:
            log.warning("cannot count the failure: %s", exc, extra={"category": "security"})


def _refuse_throttled(client: str, path: str, token: str) -> None:
    """429 when the client already failed too often in this window."""
    try:
        retry_after = _throttle().exceeded(client, get_gateway_config().auth_failure_limit)
    except RedisError as exc:
        log.warning("cannot read the failure count: %s", exc, extra={"category": "security"})
        return
    if retry_after:
        _failed("throttled", client, path, token, record=False)
        detail = "too many failed authentications from this address; retry later"
        raise ApiProblem(429, "too_many_failed_authentications", detail, {"Retry-After": str(retry_after)})


def authenticate(headers: Mapping[str, str], client: str = "", path: str = "") -> Principal:
    """The caller a request's key belongs to; anonymous (allowed everything) only while no key exists.

    401 without a key (a hint when the Authorization header lacks `Bearer`) or with an unknown or revoked
    one; 429 for a client past its failure limit.
    """
    token = token_of(headers)
    if not token:
        if not key_service.keys_exist():
            return ANONYMOUS
        raw = headers.get("authorization", "")
        if raw:
            _failed("scheme", client, path, None, record=False)
            raise ApiProblem(
                401, "unauthorized", f"the Authorization header is not a Bearer key: {SCHEME_HINT}", CHALLENGE
            )
        API_AUTH_FAILURES.labels("missing").inc()
        raise ApiProblem(401, "unauthorized", f"an API key is required: {SCHEME_HINT}", CHALLENGE)
    found = key_service.cached_principal(token)
    if found is not None:
        return found
    _refuse_throttled(client, path, token)
    found = key_service.authenticate(token)
    if found is None:
        _failed("unknown", client, path, token)
        raise ApiProblem(401, "unauthorized", "the API key is unknown or revoked", CHALLENGE)
    return found

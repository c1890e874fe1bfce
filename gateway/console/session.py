"""Console sessions: signed in with an API key, kept server-side in Redis under a random id that travels in an
HttpOnly, SameSite=Strict cookie; each session has its own CSRF token, checked on every form."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select

from gateway.keys import ANONYMOUS, Principal, env_principal, hash_token
from gateway.services import keys as key_service
from worker.constants import REDIS_KEY_PREFIX
from worker.db import session_scope
from worker.models.gateway import ApiKey
from worker.redis_client import get_redis
from worker.settings import get_settings

COOKIE = "fleet_console"
LOGIN_COOKIE = "fleet_console_login"  # the CSRF token of the sign-in form, before any session exists
SESSION_PREFIX = REDIS_KEY_PREFIX + "console:session:"
# A session ends after this long without a request (sliding).
SESSION_TTL_S = 8 * 3600


@dataclass
class Session:
    """Who signed in (the key's id and the SHA-256 of its token, never the token), the CSRF token, a flash."""

    key_id: str
    token_sha256: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    language: str | None = None
    flash: str | None = None


def _key(session_id: str) -> str:
    return SESSION_PREFIX + session_id


def load(request: Request) -> tuple[str, Session] | None:
    """The request's session (its id and content), None without a valid cookie."""
    session_id = request.cookies.get(COOKIE, "")
    if not session_id or len(session_id) > 100:
        return None
    raw = get_redis().get(_key(session_id))
    if raw is None:
        return None
    get_redis().expire(_key(session_id), SESSION_TTL_S)
    return session_id, Session(**json.loads(raw))


def save(session_id: str, session: Session) -> None:
    """Store the session (its idle timeout starts again)."""
    get_redis().set(_key(session_id), json.dumps(asdict(session)), ex=SESSION_TTL_S)


def start(response: Response, request: Request, principal: Principal, token: str) -> None:
    """A new session for the signed-in key, its cookie set on the response."""
    session_id = secrets.token_urlsafe(32)
    save(session_id, Session(key_id=principal.key_id, token_sha256=hash_token(token)))
    set_cookie(response, request, COOKIE, session_id)


def end(request: Request, response: Response) -> None:
    """Forget the session and its cookie."""
    found = load(request)
    if found is not None:
        get_redis().delete(_key(found[0]))
    response.delete_cookie(COOKIE, path="/console")


def set_cookie(response: Response, request: Request, name: str, value: str) -> None:
    """An HttpOnly, SameSite=Strict cookie for /console (Secure when the request came over HTTPS)."""
    response.set_cookie(name, value, max_age=SESSION_TTL_S, path="/console", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")  # fmt: skip


def principal_of(session: Session) -> Principal | None:
    """The key the session belongs to, None once it is revoked (checked on every request)."""
    if session.key_id == ANONYMOUS.key_id:
        return None if key_service.keys_exist() else ANONYMOUS

    def lookup() -> Principal | None:
        if session.key_id.startswith("env-"):
            settings_keys = get_settings().api_key_list
            matches = [k for k in settings_keys if hmac.compare_digest(hash_token(k), session.token_sha256)]
            return env_principal(matches[0], settings_keys) if matches else None
        with session_scope() as db:
            row = db.scalar(select(ApiKey).where(ApiKey.prefix == session.key_id, ApiKey.revoked_at.is_(None)))
            if row is None or not hmac.compare_digest(row.token_sha256, session.token_sha256):
                return None
            return Principal(row.prefix, row.name, frozenset(row.scopes), row.rate_limit)

    found = key_service.key_cache.get_or_load(f"console:{session.key_id}:{session.token_sha256}", lookup)
    return found if isinstance(found, Principal) else None


def csrf_ok(expected: str | None, given: Any) -> bool:
    """Whether a form's CSRF token is the session's (compared in constant time)."""
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected or "", given)

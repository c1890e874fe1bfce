"""API keys in SQL: create, list, revoke, and authenticate a presented token (CLI and API share it)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from gateway.keys import (
    Principal,
    env_principal,
    generate_key,
    hash_token,
    prefix_of,
    token_matches,
    validate_scopes,
)
from worker.audit import record
from worker.db import session_scope
from worker.errors import FleetError
from worker.models.core import utcnow
from worker.models.gateway import ApiKey
from worker.settings import get_settings


class KeyNotFound(FleetError):
    """No API key has that id."""


@dataclass(frozen=True)
class KeyInfo:
    """What `agent keys list` shows: never the token nor its hash."""

    key_id: str
    name: str
    scopes: list[str]
    rate_limit: int | None
    created_at: datetime
    revoked_at: datetime | None


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.prefix, row.name, list(row.scopes), row.rate_limit, row.created_at, row.revoked_at)


def create_key(name: str, scopes: list[str], rate_limit: int | None = None, actor: str = "cli") -> tuple[KeyInfo, str]:
    """Store a new key and return it with its token (the only time the token is visible)."""
    canonical = validate_scopes(scopes)
    new = generate_key()
    with session_scope() as session:
        row = ApiKey(prefix=new.prefix, name=name, token_sha256=new.token_sha256, scopes=canonical)
        row.rate_limit = rate_limit
        session.add(row)
        record(session, "audit", "key_created", new.prefix, actor=actor, name=name, scopes=canonical)
        session.flush()
        info = _info(row)
    key_cache.clear()
    return info, new.token


def list_keys(include_revoked: bool = False) -> list[KeyInfo]:
    """Every key, newest first."""
    with session_scope() as session:
        query = select(ApiKey).order_by(ApiKey.id.desc())
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return [_info(row) for row in session.scalars(query)]


def revoke_key(key_id: str, actor: str = "cli") -> KeyInfo:
    """Revoke a key by its visible id; KeyNotFound when there is none."""
    with session_scope() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == key_id))
        if row is None:
            raise KeyNotFound(f"no API key with id {key_id!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            record(session, "audit", "key_revoked", key_id, actor=actor)
        info = _info(row)
    key_cache.clear()
    return info


def _stored_principal(token: str) -> Principal | None:
    prefix = prefix_of(token)
    if prefix is None:
        return None
    with session_scope() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)))
        if row is None or not token_matches(token, row.token_sha256):
            return None
        return Principal(key_id=row.prefix, name=row.name, scopes=frozenset(row.scopes), rate_limit=row.rate_limit)


def _keys_exist() -> bool:
    if get_settings().api_key_list:
        return True
    with session_scope() as session:
        return bool(session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))))


class KeyCache:
    """Short-lived answers to 'do keys exist' and 'whose token is this', so a request costs no query.

    Bounded (least recently used first out) and never holding a miss: a stream of made-up tokens adds nothing.
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> object | None:
        """The value cached for `key`, None when absent or stale."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if now - hit[0] >= self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def get_or_load(self, key: str, load: Callable[[], object]) -> object:
        """The cached value for `key`, loading it with `load()` when absent or stale; a None is not kept."""
        value = self.get(key)
        if value is None:
            value = load()
            if value is not None:
                with self._lock:
                    self._entries[key] = (time.monotonic(), value)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything (after a key is created or revoked in this process)."""
        with self._lock:
            self._entries.clear()


key_cache = KeyCache()


def keys_exist() -> bool:
    """Whether any key is configured (stored and not revoked, or in FLEET_API_KEYS)."""
    return bool(key_cache.get_or_load("exists", _keys_exist))


def cached_principal(token: str) -> Principal | None:
    """The principal of a token found recently (no query), None otherwise."""
    found = key_cache.get("token:" + hash_token(token))
    return found if isinstance(found, Principal) else None


def authenticate(token: str) -> Principal | None:
    """The principal a token belongs to, None when it is unknown or revoked."""

    def load() -> Principal | None:
        return env_principal(token, get_settings().api_key_list) or _stored_principal(token)

    found = key_cache.get_or_load("token:" + hash_token(token), load)
    return found if isinstance(found, Principal) else None


DEVELOPMENT_KEY_NAME = "development (agent up)"


def ensure_development_key() -> str | None:
    """For `agent up`: create an admin key when none exists and return its token (None when keys exist)."""
    key_cache.clear()
    if keys_exist():
        return None
    _info, token = create_key(DEVELOPMENT_KEY_NAME, ["admin"], actor="agent up")
    return token

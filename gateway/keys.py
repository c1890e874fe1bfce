"""API keys: generation, hashing and scopes (pure; the SQL side is gateway.services.keys)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

SCOPES: tuple[str, ...] = ("run", "ledger:write", "read", "operator", "admin")
# A scope also grants the scopes listed here; admin grants everything. A run belongs to the key that submitted
# it: only `operator` (and so `admin`) reads, cancels, approves and rejects every key's runs.
IMPLIED: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "operator": frozenset({"operator", "run", "read"}),
    "run": frozenset({"run", "read"}),
    "ledger:write": frozenset({"ledger:write", "read"}),
    "read": frozenset({"read"}),
}
TOKEN_PREFIX = "fleet"  # noqa: S105  (the visible kind of a token, not a secret)
PREFIX_ID_BYTES = 4  # 8 hex characters: the visible id shown by `agent keys list`
SECRET_BYTES = 32


class UnknownScope(ValueError):
    """A scope that is not one of run, ledger:write, read, operator, admin."""


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the token is shown once, only its hash is stored."""

    prefix: str
    token: str
    token_sha256: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's visible id, its name and its scopes."""

    key_id: str
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    rate_limit: int | None = None

    def allows(self, scope: str) -> bool:
        """Whether one of the key's scopes grants `scope`."""
        return any(scope in IMPLIED.get(held, frozenset()) for held in self.scopes)

    def owns(self, owner: str | None) -> bool:
        """Whether the key may see and act on a run submitted by `owner`: its own, or any with `operator`."""
        return self.allows("operator") or (owner is not None and owner == self.key_id)

    @property
    def granted(self) -> tuple[str, ...]:
        """Every scope the key's scopes grant, in canonical order (what a run it submits may do)."""
        return tuple(scope for scope in SCOPES if self.allows(scope))


# Who calls when no key exists at all (development mode): everything is allowed.
ANONYMOUS = Principal(key_id="anonymous", name="open API (no keys configured)", scopes=frozenset({"admin"}))


def validate_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes, de-duplicated in canonical order; UnknownScope names a bad one."""
    for scope in scopes:
        if scope not in SCOPES:
            raise UnknownScope(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise UnknownScope(f"a key needs at least one scope of {', '.join(SCOPES)}")
    return [scope for scope in SCOPES if scope in scopes]


def hash_token(token: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_key() -> NewKey:
    """A random 32-byte token with a short visible prefix id: `fleet_<id>_<secret>`."""
    prefix = secrets.token_hex(PREFIX_ID_BYTES)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewKey(prefix=prefix, token=token, token_sha256=hash_token(token))


def prefix_of(token: str) -> str | None:
    """The visible id inside a token, None when it is not shaped like one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 2 * PREFIX_ID_BYTES:
        return None
    return parts[1]


def token_matches(token: str, stored_sha256: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_sha256)


def env_principal(token: str, env_keys: list[str]) -> Principal | None:
    """An admin principal when the token is one of FLEET_API_KEYS (each compared in constant time)."""
    presented = hash_token(token)
    found: Principal | None = None
    for index, key in enumerate(env_keys):
        # No early exit: every configured key is compared, so timing does not reveal which one matched.
        if hmac.compare_digest(presented, hash_token(key)):
            found = Principal(key_id=f"env-{index}", name="FLEET_API_KEYS", scopes=frozenset({"admin"}))
    return found

"""API keys: generation, hashing, scopes (pure)."""

from __future__ import annotations

import pytest

from gateway.keys import (
    ANONYMOUS,
    Principal,
    UnknownScope,
    env_principal,
    generate_key,
    hash_token,
    prefix_of,
    token_matches,
    validate_scopes,
)


def test_a_generated_key_is_stored_only_as_the_sha256_of_its_token() -> None:
    # Given a new key
    key = generate_key()
    # Then the token carries its visible id, and the stored hash matches only that token
    assert key.token.startswith(f"fleet_{key.prefix}_")
    assert key.token_sha256 == hash_token(key.token) and key.token not in key.token_sha256
    assert token_matches(key.token, key.token_sha256)
    assert not token_matches(key.token + "x", key.token_sha256)


def test_two_generated_keys_never_share_a_token_or_prefix() -> None:
    keys = [generate_key() for _ in range(50)]
    assert len({k.token for k in keys}) == 50
    assert len({k.prefix for k in keys}) == 50


@pytest.mark.parametrize(
    ("token", "prefix"),
    [("fleet_0a1b2c3d_secret", "0a1b2c3d"), ("fleet_short_secret", None), ("other_0a1b2c3d_x", None), ("", None)],
)
def test_the_visible_id_is_read_from_well_formed_tokens_only(token: str, prefix: str | None) -> None:
    assert prefix_of(token) == prefix


@pytest.mark.parametrize(
    ("held", "asked", "allowed"),
    [
        ({"admin"}, "run", True),
        ({"admin"}, "ledger:write", True),
        ({"run"}, "read", True),
        ({"run"}, "ledger:write", False),
        ({"ledger:write"}, "read", True),
        ({"ledger:write"}, "run", False),
        ({"read"}, "run", False),
        ({"read"}, "admin", False),
        ({"run", "ledger:write"}, "admin", False),
    ],
)
def test_scopes_grant_what_they_imply_and_nothing_more(held: set[str], asked: str, allowed: bool) -> None:
    assert Principal("k", "n", frozenset(held)).allows(asked) is allowed


@pytest.mark.parametrize(
    ("held", "granted"),
    [
        ({"run"}, ("run", "read")),
        ({"run", "ledger:write"}, ("run", "ledger:write", "read")),
        ({"read"}, ("read",)),
        ({"admin"}, ("run", "ledger:write", "read", "operator", "admin")),
        ({"operator"}, ("run", "read", "operator")),
    ],
)
def test_a_key_grants_its_runs_every_scope_its_scopes_imply(held: set[str], granted: tuple[str, ...]) -> None:
    assert Principal("k", "n", frozenset(held)).granted == granted


def test_scopes_are_validated_and_put_in_canonical_order() -> None:
    assert validate_scopes(["read", "run", "read"]) == ["run", "read"]
    with pytest.raises(UnknownScope, match="'write'"):
        validate_scopes(["write"])
    with pytest.raises(UnknownScope):
        validate_scopes([])


def test_a_key_from_the_environment_is_an_admin_and_others_are_not() -> None:
    found = env_principal("second", ["first", "second"])
    assert found is not None and found.allows("admin") and found.key_id == "env-1"
    assert env_principal("third", ["first", "second"]) is None
    assert env_principal("first", []) is None


def test_the_anonymous_caller_of_an_open_api_may_do_everything() -> None:
    assert all(ANONYMOUS.allows(scope) for scope in ("run", "ledger:write", "read", "admin"))

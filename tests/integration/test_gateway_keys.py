"""API keys in SQL: created, authenticated, revoked; the development key of `agent up`."""

from __future__ import annotations

import pytest

from gateway.services import keys as key_service

pytestmark = pytest.mark.integration


def test_a_created_key_authenticates_until_it_is_revoked(database_url: str) -> None:
    # Given a key created with two scopes
    info, token = key_service.create_key("integration", ["read", "run"], rate_limit=7)
    try:
        # Then its token authenticates as that key, and a tampered token does not
        found = key_service.authenticate(token)
        assert found is not None and found.key_id == info.key_id and found.rate_limit == 7
        assert found.scopes == frozenset({"run", "read"})
        assert key_service.authenticate(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
        assert any(k.key_id == info.key_id for k in key_service.list_keys())
    finally:
        key_service.revoke_key(info.key_id)
    # When revoked, it no longer authenticates and is listed only with --all
    assert key_service.authenticate(token) is None
    assert not any(k.key_id == info.key_id for k in key_service.list_keys())
    assert any(k.key_id == info.key_id and k.revoked_at for k in key_service.list_keys(include_revoked=True))


def test_revoking_an_unknown_key_says_so(database_url: str) -> None:
    with pytest.raises(key_service.KeyNotFound, match="nope1234"):
        key_service.revoke_key("nope1234")


def test_agent_up_gets_a_development_key_only_when_none_exists(database_url: str) -> None:
    # Given no active key
    assert not key_service.keys_exist()
    token = key_service.ensure_development_key()
    try:
        # Then an admin key is created once, and a second call creates none
        assert token is not None
        found = key_service.authenticate(token)
        assert found is not None and found.allows("admin")
        assert key_service.ensure_development_key() is None
    finally:
        for key in key_service.list_keys():
            if key.name == key_service.DEVELOPMENT_KEY_NAME:
                key_service.revoke_key(key.key_id)
    key_service.key_cache.clear()
    assert not key_service.keys_exist()


def test_unknown_tokens_leave_no_entry_in_the_key_cache(database_url: str) -> None:
    # Given a real key, looked up once (its answer is cached)
    info, token = key_service.create_key("integration-cache", ["read"])
    try:
        key_service.key_cache.clear()
        assert key_service.authenticate(token) is not None
        cached = len(key_service.key_cache)
        # When 2,000 made-up tokens (some shaped like ours) are presented
        for index in range(2000):
            assert key_service.authenticate(f"fleet_{index:08x}_made-up-{index}") is None
            assert key_service.authenticate(f"bogus-{index}") is None
        # Then the cache holds nothing more than before
        assert len(key_service.key_cache) == cached
    finally:
        key_service.revoke_key(info.key_id)

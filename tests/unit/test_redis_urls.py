"""Where Redis is, read from a URL: Sentinel lists, TLS options, masking; every bad setting named, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.redis_urls import mask, parse_sentinel
from worker.settings import Settings, SettingsError, load_settings


def test_a_sentinel_list_names_each_node_the_database_and_the_data_password() -> None:
    target = parse_sentinel("sentinel://:s3cret@h1:26379;sentinel://h2:26380;sentinel://h3/2")
    assert target.nodes == (("h1", 26379), ("h2", 26380), ("h3", 26379))
    assert (target.db, target.password) == (2, "s3cret")


def test_every_password_of_a_sentinel_list_is_masked() -> None:
    assert mask("sentinel://u:pw1@h1:26379;sentinel://u:pw2@h2:26379/0") == (
        "sentinel://u:***@h1:26379;sentinel://u:***@h2:26379/0"
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_after_sentinel_is_parsed_or_refused_with_a_value_error(tail: str) -> None:
    try:
        target = parse_sentinel("sentinel://" + tail)
    except ValueError:
        return
    assert target.nodes and all(isinstance(port, int) for _host, port in target.nodes)


def _settings(**values: str) -> Settings:
    return load_settings(**values)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"broker_url": "sentinel://h1:26379/0"}, "FLEET_SENTINEL_MASTER"),
        ({"broker_url": "sentinel://h1:26379;redis://h2/0", "sentinel_master": "m"}, "must start with sentinel://"),
        ({"broker_url": "amqp://guest@h/"}, "redis://, rediss:// or sentinel://"),
        ({"redis_ca_cert": "/nonexistent/ca.crt"}, "no such file"),
    ],
)
def test_a_bad_redis_setting_is_refused_naming_what_to_fix(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        _settings(**env)


def test_rediss_gets_verified_tls_options_and_plain_redis_none(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    found = _settings(broker_url="rediss://h:6380/0", redis_ca_cert=str(ca))
    assert found.redis_tls(found.broker_url) == {"ssl_cert_reqs": 2, "ssl_ca_certs": str(ca)}
    assert found.redis_tls("redis://h/0") is None

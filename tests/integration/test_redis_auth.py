"""`agent up`'s broker step with a password in FLEET_BROKER_URL: the bundled Redis demands it, and no line shows it."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
import redis

from worker.errors import BrokerUnavailable
from worker.redis_server import RedisServer, free_port
from worker.runner import Fleet, FleetOptions
from worker.settings import load_settings

pytestmark = pytest.mark.integration


def _fleet(url: str, var_dir: Path) -> tuple[Fleet, io.StringIO]:
    out = io.StringIO()
    return Fleet(load_settings(broker_url=url), FleetOptions(var_dir=var_dir), out=out), out


def test_the_bundled_redis_demands_the_user_and_password_of_the_broker_url(tmp_path: Path) -> None:
    # Given a broker URL with an ACL user and password, and no server on its port
    password = f"pw-{uuid.uuid4().hex}"
    port = free_port()
    url = f"redis://fleetapp:{password}@127.0.0.1:{port}/0"
    fleet, out = _fleet(url, tmp_path)
    # When `agent up` makes sure a broker answers
    fleet.ensure_broker()
    try:
        # Then the bundled Redis it started serves that user, refuses anyone else, and no line shows the password
        assert redis.Redis.from_url(url).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert password not in out.getvalue() and "fleetapp:***@" in out.getvalue()
        assert password not in "".join(p.read_text() for p in tmp_path.rglob("*.log"))
    finally:
        assert fleet.redis is not None
        fleet.redis.stop()


def test_a_broker_refusing_the_credentials_is_named_without_them(tmp_path: Path) -> None:
    # Given a Redis that wants another password
    server = RedisServer(free_port(), tmp_path / "redis", appendonly=False, password="the-right-one").start()
    try:
        wrong = f"redis://:wrong-{uuid.uuid4().hex}@127.0.0.1:{server.port}/0"
        fleet, _out = _fleet(wrong, tmp_path)
        # Then `agent up` says the broker refused the credentials (not "no broker"), without showing them
        with pytest.raises(BrokerUnavailable, match="refused the user and password") as refused:
            fleet.ensure_broker()
        assert "wrong-" not in str(refused.value) and ":***@" in str(refused.value)
    finally:
        server.stop()

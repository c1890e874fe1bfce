"""Fixtures of the fault tests: the fleet's database, SQLite or a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import PostgresServer
from worker.agents.ports import build_ports
from worker.db import get_engine
from worker.settings import get_settings


@dataclass
class FleetDatabase:
    """The database workers are pointed at (FLEET_DATABASE_URL), and the cluster behind it when it has one."""

    url: str
    server: PostgresServer | None = None


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_database(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FleetDatabase]:
    """The session's SQLite file, or the private PostgreSQL cluster with a password (then the test process reads
    and writes it too, as the gateway would)."""
    if request.param == "sqlite":
        yield FleetDatabase(database_url)
        return
    server: PostgresServer = request.getfixturevalue("private_postgres")
    monkeypatch.setenv("FLEET_DATABASE_URL", server.url("fleet"))
    _forget_settings()
    yield FleetDatabase(server.url("fleet"), server)
    get_engine(server.url("fleet")).dispose()
    _forget_settings()


def _forget_settings() -> None:
    """Make this process read FLEET_DATABASE_URL again: its settings and the agent ports built on them."""
    get_settings.cache_clear()
    build_ports.cache_clear()

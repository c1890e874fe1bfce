"""Migrations and sessions against SQLite (WAL) and, when configured, PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from worker.db import check, make_engine, session_scope
from worker.migrate import current, upgrade
from worker.models import AuditEvent


def _round_trip(url: str) -> None:
    upgrade(url)
    assert current(url) != []
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            session.add(AuditEvent(category="system", action="test", subject="s1", details={"k": 1}))
        with session_scope(engine) as session:
            found = session.scalars(select(AuditEvent).where(AuditEvent.subject == "s1")).one()
        assert found.details == {"k": 1}
        assert check(engine) >= 0
    finally:
        engine.dispose()


def test_sqlite_is_migrated_and_in_wal_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'nested' / 'fleet.db'}"
    _round_trip(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    engine.dispose()


@pytest.mark.postgres
def test_postgres_is_migrated(postgres_url: str) -> None:
    _round_trip(postgres_url)

"""Migration agents_0003: runs stored before it get their input text, so the run list's text search finds them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from worker.db import make_engine
from worker.migrate import upgrade

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no revision applied yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    from tests.conftest import _postgres_wanted

    server_url = _postgres_wanted()
    name = f"fleet_history_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_runs_stored_before_the_migration_get_their_input_text(fresh_url: str) -> None:
    # Given a database at agents_0002 holding a run with a Korean input
    upgrade(fresh_url, "agents_0002_owner")
    engine = make_engine(fresh_url)
    run_id = str(uuid.uuid4())
    request = json.dumps({"input": "환불 내역을 요약해 줘", "mode": "planner"})
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO agent_runs (run_id, status, request, queue, priority, timeline, created_at, updated_at) "
                 "VALUES (:r, 'succeeded', :q, 'agents', 5, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"r": run_id, "q": request},
        )  # fmt: skip
    # When it is migrated to the newest revision
    upgrade(fresh_url)
    # Then the run's input is its plain text
    with engine.connect() as connection:
        found = connection.execute(text("SELECT input_text FROM agent_runs WHERE run_id = :r"), {"r": run_id}).scalar()
    engine.dispose()
    assert found == "환불 내역을 요약해 줘"

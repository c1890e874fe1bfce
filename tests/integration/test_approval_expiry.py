"""The sweep ends a hold nobody decided on, in the fleet's database: rejected, with the reason, audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agents import runner
from agents.config import AgentsConfig
from agents.memory import MemoryEvents
from agents.models import WorkflowRequest
from agents.profiles import LocalProfile
from agents.tools import default_registry
from worker.agents.store import SqlRunStore
from worker.db import make_engine
from worker.migrate import upgrade
from worker.models.core import AuditEvent

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlRunStore]:
    """A run store on a database of this test alone."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'holds.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    yield SqlRunStore(engine)
    engine.dispose()


def test_the_sweep_rejects_a_hold_older_than_the_approval_timeout_and_audits_it(store: SqlRunStore) -> None:
    # Given a run held for approval, with a one-hour approval timeout
    ports = runner.Ports(store=store, events=MemoryEvents(), registry=default_registry(),
                         profiles=lambda _name: LocalProfile(), config=AgentsConfig(approval_timeout_s=3600))  # fmt: skip
    run_id = f"hold-{datetime.now(UTC).timestamp()}"
    store.create_run(run_id, WorkflowRequest(input="compute 1+1", options={"require_approval": True}), "agents")
    runner.analyze(run_id, ports)
    runner.gate(run_id, ports)
    assert store.get_run(run_id).status == "awaiting_approval"
    # When the sweep runs within the hour, nothing happens; after it, the run is rejected with the reason
    assert runner.expire_holds(ports, datetime.now(UTC) + timedelta(minutes=59)) == []
    assert [r.run_id for r in runner.expire_holds(ports, datetime.now(UTC) + timedelta(minutes=61))] == [run_id]
    record = store.get_run(run_id)
    assert (record.status, record.error) == ("rejected", "approval expired: no decision within 3600 s")
    # And the audit trail says the sweep did it
    with store.engine.connect() as connection:
        actors = (
            connection.execute(
                select(AuditEvent.actor).where(AuditEvent.subject == run_id, AuditEvent.action == "run_rejected")
            )
            .scalars()
            .all()
        )
    assert actors == ["sweep"]

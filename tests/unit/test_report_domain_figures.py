"""Ledger and agent figures of the report: 'no data' before their tables exist, the period's counts after."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.agents.models import AgentRun, AgentStage
from worker.db import make_engine, session_scope
from worker.ledger.models import LedgerAlert, LedgerEventRecord
from worker.migrate import upgrade
from worker.reports.store import agent_figures, ledger_figures

START, END = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, tzinfo=UTC)
INSIDE, OUTSIDE = datetime(2026, 11, 21, 9, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)


def test_figures_are_none_without_the_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert ledger_figures(engine, START, END) is None and agent_figures(engine, START, END) is None
    engine.dispose()


def test_ledger_and_agent_figures_count_the_period_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'd.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        for n, (status, at) in enumerate([("accepted", INSIDE)] * 3 + [("rejected", INSIDE), ("accepted", OUTSIDE)]):
            session.add(
                LedgerEventRecord(
                    event_id=f"e{n}", fingerprint="f", status=status, result={}, processed_at=at, ttd_ms=2.0
                )
            )
        session.add(LedgerAlert(at=INSIDE, kind="amount", details={}))
        session.add(AgentRun(run_id="r1", status="succeeded", request={}, created_at=INSIDE))
        session.add(AgentRun(run_id="r2", status="failed", request={}, created_at=INSIDE))
        session.add(
            AgentStage(
                run_id="r1",
                stage="analyze",
                status="succeeded",
                started_at=INSIDE,
                duration_ms=40,
                prompt_tokens=10,
                completion_tokens=5,
                cost=0.01,
            )
        )
    ledger = ledger_figures(engine, START, END)
    agents = agent_figures(engine, START, END)
    assert ledger is not None and agents is not None
    assert (ledger["events"], ledger["by status"], ledger["rejection rate %"]) == (
        4,
        {"accepted": 3, "rejected": 1},
        25.0,
    )
    assert ledger["anomaly alerts"] == {"amount": 1}
    assert (agents["runs"], agents["success rate %"]) == (2, 50.0)
    assert agents["stages (count, mean ms, tokens, cost)"] == {"analyze": "1, 40 ms, 15 tokens, 0.0100"}
    engine.dispose()

"""Ledger and agent figures are read by table name: 'no data' without tables, counts by status with them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert

from worker.db import make_engine
from worker.stores.reports import domain_figures


def test_domain_figures_are_none_without_tables_and_counted_by_status_in_the_period(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    assert domain_figures(("ledger",), engine) is None
    metadata = MetaData()
    results = Table(
        "ledger_results",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("status", String(16)),
        Column("created_at", DateTime(timezone=True)),
    )
    metadata.create_all(engine)
    inside, outside = datetime(2026, 11, 21, 9, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(results),
            [{"status": "accepted", "created_at": inside}] * 3
            + [{"status": "rejected", "created_at": inside}, {"status": "accepted", "created_at": outside}],
        )
    figures = domain_figures(
        ("ledger",), engine, datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, tzinfo=UTC)
    )
    assert figures == {"ledger_results rows": 4, "ledger_results by status": {"accepted": 3, "rejected": 1}}
    engine.dispose()

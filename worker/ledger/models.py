"""Tables of the ledger domain: the shadow ledger, results, snapshots, counters and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from worker.db import Base

# Amounts are stored as decimal text: SQLite has no exact decimal type, and text round-trips exactly.
AMOUNT = String(48)


class LedgerAccount(Base):
    """One account of the shadow ledger."""

    __tablename__ = "ledger_accounts"

    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    overdraft_limit: Mapped[str] = mapped_column(AMOUNT)
    balance: Mapped[str] = mapped_column(AMOUNT)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sequence: Mapped[int] = mapped_column(Integer, default=0)
    last_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    baseline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LedgerEventRecord(Base):
    """One processed event: the fingerprint of its canonical JSON and its stored result."""

    __tablename__ = "ledger_events"

    event_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    api_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(48), default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ttd_ms: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_ledger_events_processed_at", "processed_at"),)


class LedgerTransaction(Base):
    """A transaction (or contract execution) id already used, and the event that used it."""

    __tablename__ = "ledger_transactions"

    transaction_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(160))


class LedgerSnapshot(Base):
    """The JSON snapshot of one quick run: the event, balances before and after, the result."""

    __tablename__ = "ledger_snapshots"

    snapshot_id: Mapped[str] = mapped_column(String(180), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_ledger_snapshots_event_id", "event_id"),
        Index("ix_ledger_snapshots_created_at", "created_at"),
    )


class LedgerConfigValue(Base):
    """A value set by an accepted `config_changed` event."""

    __tablename__ = "ledger_config"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    event_id: Mapped[str] = mapped_column(String(160))


class LedgerVersionCount(Base):
    """Events per api_version, status and deciding code ('' when none)."""

    __tablename__ = "ledger_version_counts"

    api_version: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(48), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class LedgerMinute(Base):
    """Events and rejections per minute, for the rate watch."""

    __tablename__ = "ledger_minutes"

    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)


class LedgerAlert(Base):
    """An anomaly: an unusual amount for an account, or an unusual event or rejection rate."""

    __tablename__ = "ledger_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_ledger_alerts_at", "at"),)

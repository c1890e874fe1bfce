"""Tables of the alerts: the history of every incident's transitions and every delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from worker.db import Base
from worker.models.core import utcnow


class AlertEvent(Base):
    """An incident entered a state: pending, firing or resolved."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    incident_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ix_alert_events_at", "at"), Index("ix_alert_events_incident", "incident_id"))


class AlertDelivery(Base):
    """One attempt to deliver a notification to a channel: its outcome and how long it took."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    message_id: Mapped[str] = mapped_column(String(96))
    event_type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(256), default="")
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_alert_deliveries_at", "at"), Index("ix_alert_deliveries_message", "message_id"))

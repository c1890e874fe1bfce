"""Tables of the fleet itself: the audit trail and refused messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from worker.db import Base


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


class AuditEvent(Base):
    """One state change or authenticated call, who did it and to what."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    category: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128), default="system")
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_subject", "subject"))


class DeadLetter(Base):
    """A message the fleet refused or could not run, kept with its reason."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    task_name: Mapped[str] = mapped_column(String(256), default="")
    task_id: Mapped[str] = mapped_column(String(64), default="")
    queue: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    body_excerpt: Mapped[str] = mapped_column(Text, default="")
    # The Redis list a junk message was popped from, its bytes as popped (bounded) and their full size.
    source: Mapped[str] = mapped_column(String(200), default="", server_default="")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    raw_size: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (Index("ix_dead_letters_at", "at"),)

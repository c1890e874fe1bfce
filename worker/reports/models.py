"""Tables of the reports domain: per-minute metrics, host samples, daily reports and alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worker.db import Base
from worker.models.core import utcnow


class MetricMinute(Base):
    """One minute of one operation (task name and queue, API route, SQL verb): counts and histogram."""

    __tablename__ = "report_metric_minutes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256))
    grp: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    runtime_sum: Mapped[float] = mapped_column(Float, default=0.0)
    runtime_max: Mapped[float] = mapped_column(Float, default=0.0)
    wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_count: Mapped[int] = mapped_column(Integer, default=0)
    wait_max: Mapped[float] = mapped_column(Float, default=0.0)
    buckets: Mapped[list[int]] = mapped_column(JSON, default=list)

    __table_args__ = (
        UniqueConstraint("minute", "kind", "name", "grp", name="uq_report_metric_minutes_key"),
        Index("ix_report_metric_minutes_minute", "minute"),
    )


class HostMinute(Base):
    """Host and fleet evidence sampled once a minute."""

    __tablename__ = "report_host_minutes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    fleet_cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    memory_percent: Mapped[float] = mapped_column(Float, default=0.0)
    fleet_rss_mb: Mapped[float] = mapped_column(Float, default=0.0)
    net_kbps: Mapped[float] = mapped_column(Float, default=0.0)
    disk_kbps: Mapped[float] = mapped_column(Float, default=0.0)
    error_lines: Mapped[int] = mapped_column(Integer, default=0)
    warning_lines: Mapped[int] = mapped_column(Integer, default=0)
    queue_depth: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    workers: Mapped[int] = mapped_column(Integer, default=0)


class StatusReport(Base):
    """The daily status report: one per date (the unique date is what makes two beats write one)."""

    __tablename__ = "status_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_date: Mapped[date] = mapped_column(Date, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    trigger: Mapped[str] = mapped_column(String(32), default="schedule")
    health: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    markdown: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class Alert(Base):
    """One issue found by a report, and what became of its notifications."""

    __tablename__ = "report_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    report_date: Mapped[date] = mapped_column(Date)
    issue_id: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(256))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    notified: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_report_alerts_report_date", "report_date"),)


class UserSchedule(Base):
    """A schedule added at run time (`agent schedule add`); beat reads this table, so no restart is needed."""

    __tablename__ = "user_schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    task: Mapped[str] = mapped_column(String(128))
    cron: Mapped[str] = mapped_column(String(400))
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

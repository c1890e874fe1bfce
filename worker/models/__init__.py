"""Every table of the fleet; importing this package fills `Base.metadata` for Alembic."""

from __future__ import annotations

from worker.db import Base
from worker.models import agents, alerts, gateway, ledger, reports  # noqa: F401  (each domain's tables)
from worker.models.core import AuditEvent, DeadLetter

__all__ = ["AuditEvent", "Base", "DeadLetter"]

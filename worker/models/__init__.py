"""Every table of the fleet; importing this package fills `Base.metadata` for Alembic."""

from __future__ import annotations

from worker.agents import models as agents_models  # noqa: F401  (each domain's tables)
from worker.db import Base
from worker.ledger import models as ledger_models  # noqa: F401
from worker.models import alerts, gateway  # noqa: F401  (the fleet's own tables)
from worker.models.core import AuditEvent, DeadLetter
from worker.reports import models as reports_models  # noqa: F401

__all__ = ["AuditEvent", "Base", "DeadLetter"]

"""The audit trail: every state change of a run or of the ledger, every authenticated call."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from worker.masking import mask_value
from worker.models.core import AuditEvent

log = logging.getLogger("fleet.audit")


def record(
    session: Session, category: str, action: str, subject: str = "", actor: str = "system", **details: Any
) -> None:
    """Add an audit event to the session's transaction (committed with the change it describes)."""
    masked = mask_value("details", details)
    session.add(AuditEvent(category=category, action=action, subject=subject, actor=actor, details=masked))
    log.info("%s %s", action, subject, extra={"category": "audit", "actor": actor, "audit_category": category})

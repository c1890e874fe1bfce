"""Audit of authenticated calls: buffered in memory, written to the audit trail in batches."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from worker.audit import record
from worker.db import session_scope

log = logging.getLogger("fleet.api")

# A burst larger than this is written at once instead of waiting for the next periodic flush.
MAX_BATCH = 200


@dataclass(frozen=True)
class CallRecord:
    """One authenticated call."""

    actor: str
    method: str
    path: str
    status: int
    details: dict[str, Any] = field(default_factory=dict)


class AuditBuffer:
    """Collects call records; `flush()` writes them in one transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[CallRecord] = []

    def add(self, call: CallRecord) -> bool:
        """Queue a record; True when the buffer is full enough to flush now."""
        with self._lock:
            self._pending.append(call)
            return len(self._pending) >= MAX_BATCH

    def flush(self) -> int:
        """Write every pending record to the audit trail; the number written."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        with session_scope() as session:
            for call in batch:
                record(
                    session,
                    "audit",
                    "api_call",
                    f"{call.method} {call.path}",
                    actor=call.actor,
                    status=call.status,
                    **call.details,
                )
        return len(batch)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

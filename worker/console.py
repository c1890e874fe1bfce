"""Which of its children's lines `agent up` prints: start-up, warnings and errors; not one line per event.

Every line is in the log files (FLEET_LOG_DIR/*.jsonl) whatever is printed; `agent up --verbose` prints all.
"""

from __future__ import annotations

import orjson

_LOUD = frozenset({"WARNING", "ERROR", "CRITICAL"})
# Categories whose INFO lines come once per event, request or run (ledger events, audit records, access lines).
PER_EVENT_CATEGORIES = frozenset({"ledger", "agent", "audit", "api", "performance"})
# Loggers of those categories whose INFO lines are the process starting or stopping (uvicorn's own).
LIFECYCLE_LOGGERS = frozenset({"uvicorn.error"})
# Beat's line for every message it sends (a few a minute).
ROUTINE_PREFIXES = ("Scheduler: Sending due task",)


def for_terminal(line: str) -> bool:
    """True when a child's output line belongs on the quiet terminal."""
    if not line.startswith("{"):
        return True  # a banner, a traceback, Flower's own lines: not a fleet JSON line
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(record, dict):
        return True
    if str(record.get("level", "")).upper() in _LOUD:
        return True
    if record.get("logger") in LIFECYCLE_LOGGERS:
        return True
    if record.get("category") in PER_EVENT_CATEGORIES:
        return False
    return not str(record.get("message", "")).startswith(ROUTINE_PREFIXES)

"""`ledger.quick_run:v1`: validate one ledger event through the ledger package (a side effect)."""

from __future__ import annotations

from typing import Any

from agents.errors import ToolUnavailable
from agents.tools import Tool, ToolContext

EVENT_TYPES = [
    "account_opened",
    "account_closed",
    "transaction_created",
    "balance_changed",
    "contract_executed",
    "config_changed",
]


def _run(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    if context.ledger is None:
        raise ToolUnavailable("ledger.quick_run: the ledger package is not available in this process")
    event = dict(args["event"])
    # The idempotency key becomes the event id when none is given, so a retried call is a duplicate.
    if not event.get("event_id"):
        event["event_id"] = context.idempotency_key or "agent-event"
    event.setdefault("api_version", "v1")
    return context.ledger.quick_run(event)


TOOL = Tool(
    name="ledger.quick_run",
    version="v1",
    description="Validate one ledger event against the shadow ledger (records it: a side effect).",
    schema={
        "type": "object",
        "properties": {
            "event": {
                "type": "object",
                "properties": {
                    "event_id": {"type": "string", "maxLength": 128},
                    "event_type": {"type": "string", "enum": EVENT_TYPES},
                    "timestamp": {"type": "string"},
                    "api_version": {"type": "string"},
                    "data": {"type": "object"},
                },
                "required": ["event_type", "data"],
            }
        },
        "required": ["event"],
        "additionalProperties": False,
    },
    run=_run,
    side_effect=True,
    cacheable=False,
    scope="ledger:write",
)

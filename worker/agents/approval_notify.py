"""Approvers hear of a held run through the alert channels (signed webhooks, Slack, email), with a link to it."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beat.alert_config import alerts_config
from beat.errors import ReportConfigError
from worker import alert_channels
from worker.settings import get_settings

log = logging.getLogger("fleet.alerts")

EVENT = "approval.requested"


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """A run waits for a person's decision: what it asks, why it was held, where to decide."""

    run_id: str
    request: str
    reasons: tuple[str, ...]
    link: str
    at: float
    type: str = EVENT

    @property
    def message_id(self) -> str:
        """One per held run: a redelivered gate stage sends the same id, and a receiver drops the second."""
        return f"approval.{self.run_id}"

    def body(self) -> dict[str, Any]:
        """The JSON body the webhook sends."""
        return {
            "type": self.type,
            "timestamp": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "data": {"run_id": self.run_id, "request": self.request, "reasons": list(self.reasons), "link": self.link},
        }

    def text(self) -> str:
        """One line for Slack and email."""
        why = "; ".join(self.reasons) or "held by the gatekeeper"
        return f"[APPROVAL] run {self.run_id} waits for a decision ({why}): {self.link}"


@functools.cache
def _dispatcher() -> alert_channels.Dispatcher:
    return alert_channels.Dispatcher(max_workers=2)


def notify(run_id: str, request: str, reasons: list[str]) -> int:
    """Queue the request for every alert channel (sent in the background, retried); how many channels."""
    from worker.notify import config as notifications

    try:
        config = alerts_config(get_settings().section("alerts"))
    except ReportConfigError as exc:
        log.error("approvers not notified of run %s: %s", run_id, exc, extra={"category": "system"})
        return 0
    targets = alert_channels.channels(config, notifications())
    if targets:
        link = f"{config.console_url.rstrip('/')}/runs/{run_id}"
        message = ApprovalRequested(run_id, request[:500], tuple(reasons), link, time.time())
        _dispatcher().submit([message], targets)
    return len(targets)

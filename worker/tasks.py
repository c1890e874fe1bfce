"""Tasks of the fleet itself, served on every queue."""

from __future__ import annotations

import logging
import socket
from typing import Any

from worker.application import task
from worker.signals import correlation_of

log = logging.getLogger("fleet.worker")


@task(name="fleet.ping", bind=True, acks_late=False, ignore_result=False)
def ping(self: Any) -> dict[str, Any]:
    """Answer on whichever queue this was sent to: how a producer learns the queue is served."""
    request = self.request
    answer = {
        "hostname": request.hostname or socket.gethostname(),
        "queue": (request.delivery_info or {}).get("routing_key"),
        "correlation_id": correlation_of(request),
    }
    log.info("pong", extra=answer)
    return answer


class DiagnosticFailure(RuntimeError):
    """fleet.fail raised on purpose (a diagnostic: checks that failures are counted and reported)."""


@task(name="fleet.fail", bind=True, acks_late=False, ignore_result=False)
def fail(self: Any, reason: str = "diagnostic failure") -> None:
    """Diagnostic: always raise, so operators and tests can see a failure travel to metrics and reports."""
    raise DiagnosticFailure(reason)

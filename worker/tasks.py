"""Tasks of the fleet itself, served on every queue."""

from __future__ import annotations

import logging
import socket
from typing import Any

from worker.application import app
from worker.signals import correlation_of

log = logging.getLogger("fleet.worker")


@app.task(name="fleet.ping", bind=True, acks_late=False, ignore_result=False)
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

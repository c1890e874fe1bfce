"""`X-Correlation-ID` on every route: taken from the request (or made), echoed, bound to the request's log lines
and sent with every task the request sends (header `x_correlation_id`, by worker/signals.py)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker import logging as fleet_logging

HEADER = "x-correlation-id"
# What a correlation id may be: a producer's order number or a UUID; anything else is replaced, never echoed.
VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$")


def correlation_id(given: str | None) -> str:
    """The request's id when it is a valid one, a new UUID otherwise."""
    if given is not None and VALID.match(given):
        return given
    return str(uuid.uuid4())


class CorrelationMiddleware:
    """Pure ASGI middleware (it sees the request first): binds the id for the request and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k == HEADER.encode()), None)
        cid = correlation_id(raw.decode("latin-1") if raw is not None else None)

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), cid.encode())]}
            await send(message)

        with fleet_logging.bound(correlation_id=cid):
            await self.app(scope, receive, echo)

"""ASGI middleware: request body limit, rate-limit headers and audit of authenticated calls."""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit import AuditBuffer, CallRecord
from gateway.problems import PROBLEM_TYPE, TYPE_BASE


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""


def problem_bytes(status: int, code: str, detail: str, path: str) -> bytes:
    """A problem+json body for middleware that answers before routing."""
    body = {"type": TYPE_BASE + code, "title": code.replace("_", " "), "status": status, "code": code}
    body |= {"detail": detail, "instance": path}
    return json.dumps(body).encode()


async def send_problem(send: Send, status: int, code: str, detail: str, path: str) -> None:
    """Answer with a problem+json response directly on the ASGI channel."""
    body = problem_bytes(status, code, detail, path)
    headers = [(b"content-type", PROBLEM_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes`: on the declared Content-Length, and on the bytes actually streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body exceeds {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await send_problem(send, 413, "payload_too_large", detail, scope["path"])
                return
        seen = 0
        started = exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it could not read (FastAPI turns it into a 400)
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await send_problem(send, 413, "payload_too_large", detail, scope["path"])


class CallAuditMiddleware:
    """Adds the caller's rate-limit headers to the response and audits calls made with a key."""

    def __init__(self, app: ASGIApp, audit: AuditBuffer) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = scope.get("state", {}).get("rate_headers")
                if extra:
                    headers = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            await self._audit(scope, route, status)

    async def _audit(self, scope: Scope, route: str, status: int) -> None:
        principal: Any = scope.get("state", {}).get("principal")
        if principal is None or principal.key_id == "anonymous":
            return
        call = CallRecord(principal.key_id, scope["method"], scope["path"], status, {"route": route})
        if self.audit.add(call):
            await anyio.to_thread.run_sync(self.audit.flush)

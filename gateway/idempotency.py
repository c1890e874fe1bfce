"""`Idempotency-Key` on POST: the first response is stored in Redis, a repeat by the same key gets it again.

A repeat is authenticated and authorized like the first request (a revoked key, or one that lost the
route's scope, gets 401/403, never the stored response), and only the key that made the first request
gets it replayed: another key sending the same Idempotency-Key gets 422 `idempotency_key_reused`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import authenticate
from gateway.config import get_gateway_config
from gateway.deps import admit, client_host
from gateway.keys import ANONYMOUS, Principal
from gateway.middleware import send_problem
from gateway.problems import ApiProblem, handle
from worker.constants import REDIS_KEY_PREFIX

HEADER = b"idempotency-key"
KEY_PREFIX = REDIS_KEY_PREFIX + "idempotency:"
MAX_KEY_LENGTH = 200
# A first request still running holds its key this long at most (a crashed API frees it).
IN_FLIGHT_S = 120
# Response headers replayed with the stored body.
REPLAYED_HEADERS = {b"content-type", b"location"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def fingerprint(scope: Scope, body: bytes) -> str:
    """What makes two requests the same request: method, path, query and body."""
    digest = hashlib.sha256(f"{scope['method']} {scope['path']}?{scope.get('query_string', b'').decode()}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    """Replays the stored response of a POST whose Idempotency-Key was seen before."""

    def __init__(self, app: ASGIApp, redis_factory: Callable[[], Any], ttl_s: int) -> None:
        self.app = app
        self.redis_factory = redis_factory
        self.ttl_s = ttl_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_key = _header(scope, HEADER) if scope["type"] == "http" and scope["method"] == "POST" else None
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not raw_key or len(raw_key) > MAX_KEY_LENGTH or not raw_key.isascii():
            detail = f"Idempotency-Key: must be 1-{MAX_KEY_LENGTH} ASCII characters"
            await send_problem(send, 422, "validation_failed", detail, path)
            return
        request = Request(scope)
        try:
            # Before anything is read from the store: a revoked or unknown key learns nothing.
            who = await anyio.to_thread.run_sync(authenticate, request.headers, client_host(request), path)
        except Exception as exc:  # noqa: BLE001  (401, or the key store down: answered by the one handler)
            await _send_problem(request, exc, receive, send)
            return
        body = await _read_body(receive)
        redis_key = KEY_PREFIX + hashlib.sha256(raw_key).hexdigest()
        print_ = fingerprint(scope, body)
        redis = self.redis_factory()
        # One namespace for every caller: the stored owner tells another key's request from a repeat.
        first = {"fingerprint": print_, "owner": who.key_id}
        pending = json.dumps({"state": "pending", **first})
        claimed = await anyio.to_thread.run_sync(lambda: redis.set(redis_key, pending, nx=True, ex=IN_FLIGHT_S))
        if not claimed:
            raw = await anyio.to_thread.run_sync(redis.get, redis_key)
            await self._answer_repeat(request, who, receive, send, raw, print_)
            return
        await self._first(scope, _replay_body(body, receive), send, redis, redis_key, first)

    async def _answer_repeat(
        self, request: Request, who: Principal, receive: Receive, send: Send, raw: bytes | None, print_: str
    ) -> None:
        path = request.url.path
        # Gone between our claim and this read (the first request failed): as good as still running.
        stored: dict[str, Any] = json.loads(raw) if raw else {"state": "pending", "fingerprint": print_}
        if stored.get("owner", who.key_id) != who.key_id:
            detail = "this Idempotency-Key was used by another API key"
            await send_problem(send, 422, "idempotency_key_reused", detail, path)
        elif stored["fingerprint"] != print_:
            detail = "this Idempotency-Key was used with a different request"
            await send_problem(send, 422, "idempotency_key_reused", detail, path)
        elif stored["state"] == "pending":
            await send_problem(send, 409, "idempotency_in_progress", "the first request is still running", path)
        else:
            await self._replay(request, who, receive, send, stored)

    async def _replay(self, request: Request, who: Principal, receive: Receive, send: Send, stored: Any) -> None:
        """The stored response, to a caller that still holds the scope the route asked for."""
        if stored.get("scope"):
            host = client_host(request)
            try:
                rate = await anyio.to_thread.run_sync(admit, who, stored["scope"], get_gateway_config(), host)
            except ApiProblem as exc:
                await _send_problem(request, exc, receive, send)
                return
            # Read by CallAuditMiddleware: the replay carries RateLimit-* headers and is audited.
            request.state.rate_headers = rate
        if who is not ANONYMOUS:
            request.state.principal = who
        headers = [(k.encode(), v.encode()) for k, v in stored["headers"]] + [(b"idempotent-replayed", b"true")]
        await send({"type": "http.response.start", "status": stored["status"], "headers": headers})
        await send({"type": "http.response.body", "body": base64.b64decode(stored["body"])})

    async def _first(
        self, scope: Scope, receive: Receive, send: Send, redis: Any, redis_key: str, first: dict[str, Any]
    ) -> None:
        response: dict[str, Any] = {"status": 500, "headers": [], "chunks": [], "stream": False, "kept": False}

        async def keep(complete: bool) -> None:
            response["kept"], response["complete"] = True, complete
            # The scope the route's dependency asked for (deps.require): a replay is authorized again.
            first["scope"] = scope.get("state", {}).get("required_scope")
            await anyio.to_thread.run_sync(self._store, redis, redis_key, first, response)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = [(k.decode(), v.decode()) for k, v in message.get("headers", []) if k in REPLAYED_HEADERS]
                response["headers"] = headers
                response["stream"] = any(v.startswith("text/event-stream") for _k, v in headers)
            elif message["type"] == "http.response.body":
                if not response["stream"]:
                    response["chunks"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Kept before the client has the whole answer: a repeat sent the moment it arrives
                    # finds it, instead of 409 "still running".
                    await keep(complete=True)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not response["kept"]:  # the app raised or never finished its answer: nothing to replay
                await keep(complete=False)

    def _store(self, redis: Any, redis_key: str, first: dict[str, Any], response: dict[str, Any]) -> None:
        if not response["complete"] or response["stream"] or not 200 <= response["status"] < 300:
            redis.delete(redis_key)  # only successes are replayed; a failed first try may be retried
            return
        body = base64.b64encode(b"".join(response["chunks"])).decode()
        done = {"state": "done", **first, "status": response["status"]}
        done |= {"headers": response["headers"], "body": body}
        redis.set(redis_key, json.dumps(done), ex=self.ttl_s)


async def _send_problem(request: Request, exc: Exception, receive: Receive, send: Send) -> None:
    """Answer as the routes would: problems.handle renders ApiProblem and domain errors alike."""
    response = await handle(request, exc)
    await response(request.scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay_body(body: bytes, downstream: Receive) -> Receive:
    """The buffered body once, then the client's own messages (a disconnect ends a stream)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await downstream()

    return receive

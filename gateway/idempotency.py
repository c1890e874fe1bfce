"""`Idempotency-Key` on POST: the first response is stored in Redis, a repeat gets the same response."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.middleware import send_problem

HEADER = b"idempotency-key"
KEY_PREFIX = "fleet:idempotency:"
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


def credential_of(scope: Scope) -> str:
    """A hash of the caller's credentials: a key is only replayed to whoever created it."""
    auth = (_header(scope, b"authorization") or b"") + b"|" + (_header(scope, b"x-api-key") or b"")
    return hashlib.sha256(auth).hexdigest()[:32]


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
        body = await _read_body(receive)
        redis_key = KEY_PREFIX + credential_of(scope) + ":" + hashlib.sha256(raw_key).hexdigest()
        print_ = fingerprint(scope, body)
        redis = self.redis_factory()
        pending = json.dumps({"state": "pending", "fingerprint": print_})
        claimed = await anyio.to_thread.run_sync(lambda: redis.set(redis_key, pending, nx=True, ex=IN_FLIGHT_S))
        if not claimed:
            await self._answer_repeat(scope, send, redis, redis_key, print_)
            return
        await self._first(scope, _replay_body(body, receive), send, redis, redis_key, print_)

    async def _answer_repeat(self, scope: Scope, send: Send, redis: Any, redis_key: str, print_: str) -> None:
        path = scope["path"]
        raw = await anyio.to_thread.run_sync(redis.get, redis_key)
        stored: dict[str, Any] = json.loads(raw) if raw else {"state": "pending", "fingerprint": print_}
        if stored["fingerprint"] != print_:
            detail = "this Idempotency-Key was used with a different request"
            await send_problem(send, 422, "idempotency_key_reused", detail, path)
        elif stored["state"] == "pending":
            await send_problem(send, 409, "idempotency_in_progress", "the first request is still running", path)
        else:
            headers = [(k.encode(), v.encode()) for k, v in stored["headers"]] + [(b"idempotent-replayed", b"true")]
            await send({"type": "http.response.start", "status": stored["status"], "headers": headers})
            await send({"type": "http.response.body", "body": base64.b64decode(stored["body"])})

    async def _first(self, scope: Scope, receive: Receive, send: Send, redis: Any, redis_key: str, print_: str) -> None:
        response: dict[str, Any] = {"status": 500, "headers": [], "chunks": [], "stream": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = [(k.decode(), v.decode()) for k, v in message.get("headers", []) if k in REPLAYED_HEADERS]
                response["headers"] = headers
                response["stream"] = any(v.startswith("text/event-stream") for _k, v in headers)
            elif message["type"] == "http.response.body" and not response["stream"]:
                response["chunks"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await anyio.to_thread.run_sync(self._store, redis, redis_key, print_, response)

    def _store(self, redis: Any, redis_key: str, print_: str, response: dict[str, Any]) -> None:
        if response["stream"] or not 200 <= response["status"] < 300:
            redis.delete(redis_key)  # only successes are replayed; a failed first try may be retried
            return
        body = base64.b64encode(b"".join(response["chunks"])).decode()
        done = {"state": "done", "fingerprint": print_, "status": response["status"]}
        done |= {"headers": response["headers"], "body": body}
        redis.set(redis_key, json.dumps(done), ex=self.ttl_s)


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

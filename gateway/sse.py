"""Server-sent events from a Redis stream, resumable from `Last-Event-ID` (the stream entry id)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

# A comment line this often keeps proxies from closing an idle stream.
HEARTBEAT_S = 15.0
STREAM_ID_CHARS = frozenset("0123456789-")


def resume_id(last_event_id: str | None) -> str:
    """Where to resume reading: after the client's last event id, or from the beginning."""
    if last_event_id and set(last_event_id) <= STREAM_ID_CHARS and last_event_id.count("-") <= 1:
        return last_event_id
    return "0-0"


def format_event(entry_id: str, event: str, data: Any) -> bytes:
    """One SSE frame: id, event type and JSON data."""
    payload = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {entry_id}\nevent: {event}\ndata: {payload}\n\n".encode()


async def stream_entries(
    redis: Any,
    key: str,
    last_event_id: str | None,
    decode: Callable[[dict[str, str]], tuple[str, Any]],
    is_final: Callable[[str, Any], bool],
    max_idle_s: float = 600.0,
) -> AsyncIterator[bytes]:
    """SSE frames for each entry of the stream after `last_event_id`, until a final one or idle too long."""
    cursor = resume_id(last_event_id)
    idle = 0.0
    while idle < max_idle_s:
        answer = await redis.xread({key: cursor}, count=100, block=int(HEARTBEAT_S * 1000))
        if not answer:
            idle += HEARTBEAT_S
            yield b": heartbeat\n\n"
            continue
        idle = 0.0
        for entry_id, fields in answer[0][1]:
            cursor = entry_id
            event, data = decode(fields)
            yield format_event(entry_id, event, data)
            if is_final(event, data):
                return

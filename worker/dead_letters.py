"""Messages the fleet refused or could not run, kept with their reason (the dead-letter table)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import signals
from celery.worker.consumer import Consumer
from kombu.exceptions import ContentDisallowed, DecodeError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from vine import promise

from worker import task_message
from worker.db import session_scope
from worker.envelope import Junk
from worker.masking import mask_text
from worker.models.core import DeadLetter

log = logging.getLogger("fleet.dead_letters")
EXCERPT_CHARS = 500
# Bytes of a junk message kept as popped: enough to see what sent it, bounded against a flood of huge junk.
RAW_BYTES = 64 * 1024


def record(
    reason: str,
    detail: str,
    task_name: str = "",
    task_id: str = "",
    queue: str = "",
    body: Any = b"",
    *,
    source: str = "",
    raw: bytes | None = None,
) -> None:
    """Keep one refused message; when the database is down the log line is the only record.

    `source` is the Redis list it was popped from; `raw`, the bytes as popped (kept up to RAW_BYTES).
    """
    # A hostile message's names may hold a lone surrogate or NUL: kept escaped, as no store or log file takes them.
    detail, task_name, task_id, queue, source = (_text(v) for v in (detail, task_name, task_id, queue, source))
    excerpt = mask_text(_text(_excerpt(body)))
    context = {"reason": reason, "task_name": task_name, "task_id": task_id, "queue": queue, "source": source}
    log.error("message refused: %s: %s", reason, detail, extra={"category": "security", **context})
    try:
        with session_scope() as session:
            session.add(
                DeadLetter(
                    reason=reason,
                    detail=mask_text(detail)[:2000],
                    task_name=task_name[:256],
                    task_id=task_id[:64],
                    queue=queue[:64],
                    source=source[:200],
                    body_excerpt=excerpt,
                    raw=None if raw is None else raw[:RAW_BYTES],
                    raw_size=None if raw is None else len(raw),
                )
            )
    except SQLAlchemyError as exc:
        # Nothing else holds the message now: the log line says what it was, as far as it can be shown.
        log.error(
            "dead letter not stored: %s; %d bytes from %s lost, beginning %s",
            exc,
            len(raw) if raw is not None else len(excerpt),
            source or queue or "a consumer",
            excerpt[:200],
            extra={"category": "system", **context},
        )


def keep_junk(junk: Junk, raw: bytes, queue: str, source: str) -> None:
    """Keep bytes popped from a queue's list that are no message (worker/envelope.py), with where they were."""
    record(junk.reason, junk.detail, junk.task_name, junk.task_id, queue, raw, source=source, raw=raw)


def _text(value: str) -> str:
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()


def _excerpt(body: Any) -> str:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body[:EXCERPT_CHARS]).decode("utf-8", errors="replace")
    return repr(body)[:EXCERPT_CHARS]


def _unreadable(message: Any) -> str | None:
    try:
        body = message.decode()  # decoded once: Celery reads the cached value
    except (DecodeError, ContentDisallowed):
        return None  # Celery's own path refuses it, and on_decode_error or task_rejected records it
    return task_message.problem(message.headers, body)


def classify(exc: BaseException) -> str:
    """A stable reason code for a message that could not be decoded."""
    if isinstance(exc, ContentDisallowed):
        return "content_refused"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, RecursionError) or isinstance(cause, RecursionError) or "recursion" in str(exc).lower():
        return "too_deep"
    return "not_json"


class DeadLetterConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, recording every undecodable or unrunnable message before acknowledging it."""

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """Name the refused task for monitors, then let Celery refuse it and report it failed.

        Celery sends only `task-failed` for it: Flower listed a FAILURE without a name. A `task-received`
        carrying the name the producer gave goes first (the same buffered batch keeps the order).
        """
        headers = getattr(message, "headers", None) or {}
        if self.event_dispatcher is not None and headers.get("id"):
            name = str(headers.get("task") or "(no task name)")[:256]
            self.event_dispatcher.send("task-received", uuid=str(headers["id"])[:64], name=name, args="", kwargs="")
        super().on_unknown_task(body, message, exc)

    def create_task_handler(self, promise: Any = promise) -> Callable[[Any], None]:
        """Celery's handler of a received message, after a check of what Celery would trust blindly."""
        handle = super().create_task_handler(promise)

        def on_task_received(message: Any) -> None:
            found = _unreadable(message)
            if found is None:
                handle(message)
            else:
                self.on_malformed_message(message, found)

        return on_task_received

    def on_malformed_message(self, message: Any, problem: str) -> None:
        """Record a message Celery could not read as a task (worker/task_message.py), then drop it."""
        headers = message.headers
        record(
            "invalid_message",
            problem,
            str(headers.get("task", ""))[:256],
            str(headers.get("id", ""))[:64],
            (message.delivery_info or {}).get("routing_key", ""),
            message.body,
        )
        message.reject_log_error(log, self.connection_errors)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """Record, then let Celery log and acknowledge so the message does not loop."""
        headers = message.headers or {}
        record(
            classify(exc),
            f"{type(exc).__name__}: {exc}"[:2000],
            str(headers.get("task", "")),
            str(headers.get("id", "")),
            (message.delivery_info or {}).get("routing_key", ""),
            message.body,
        )
        super().on_decode_error(message, exc)


def _unknown_task(
    message: Any = None, exc: BaseException | None = None, name: str = "", id: str = "", **_: Any
) -> None:
    queue = (getattr(message, "delivery_info", None) or {}).get("routing_key", "")
    body = getattr(message, "body", b"")
    record("unknown_task", f"no task named {name!r} is registered", name, id, queue, body, raw=_envelope_of(message))


def _envelope_of(message: Any) -> bytes | None:
    """The message as it was popped (kombu's envelope), so it can be requeued once a worker knows its task."""
    payload = getattr(message, "_raw", None)
    if not isinstance(payload, dict):
        return None
    try:
        return json.dumps(payload, default=str).encode("utf-8")
    except (TypeError, ValueError):
        return None


def _invalid_message(message: Any = None, exc: BaseException | None = None, **_: Any) -> None:
    headers = getattr(message, "headers", None) or {}
    undecodable = isinstance(exc, DecodeError | ContentDisallowed)
    record(
        classify(exc) if undecodable and exc is not None else "invalid_message",
        f"{type(exc).__name__}: {exc}" if exc else "not a Celery task message",
        str(headers.get("task", "")),
        str(headers.get("id", "")),
        "",
        getattr(message, "body", b""),
    )


def _bad_arguments(
    sender: Any = None,
    task_id: str = "",
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    **_: Any,
) -> None:
    # Python's own message when the arguments do not bind: "ping() takes 1 positional argument but 3 ..."
    run_name = getattr(getattr(sender, "run", None), "__name__", "")
    text = str(exception)
    if isinstance(exception, TypeError) and run_name and re.match(rf"{run_name}\(\) (takes|got|missing)", text):
        record("bad_arguments", text, getattr(sender, "name", ""), task_id, "", repr({"args": args, "kwargs": kwargs}))


def install() -> None:
    """Record unknown tasks, rejected messages and bad arguments (create_app calls it)."""
    signals.task_unknown.connect(_unknown_task, weak=False)
    signals.task_rejected.connect(_invalid_message, weak=False)
    signals.task_failure.connect(_bad_arguments, weak=False)


def recent(hours: int = 24, limit: int = 5) -> dict[str, Any]:
    """Dead letters of the last hours: count per reason and the latest few."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    with session_scope() as session:
        counts = dict(
            session.execute(
                select(DeadLetter.reason, func.count()).where(DeadLetter.at >= since).group_by(DeadLetter.reason)
            ).all()
        )
        latest = session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)).all()
        return {
            "counts": {str(k): int(v) for k, v in counts.items()},
            "latest": [
                {
                    "at": d.at.isoformat(),
                    "reason": d.reason,
                    "task_name": d.task_name,
                    "queue": d.queue,
                    "source": d.source,  # the Redis list junk was popped from
                    "detail": d.detail,
                }
                for d in latest
            ],
        }

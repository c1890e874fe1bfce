"""Dead letters for operators: list with filters, show the raw message (secrets masked), requeue, discard.

Every requeue and discard is audited with who did it. A dead letter is requeued by publishing the message it
holds (kombu's envelope: the bytes a worker popped, or the envelope of an unknown task) back onto its queue;
a row whose bytes are no message is refused, since a worker would only refuse it again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, delete, func, select

from gateway.services.errors import CountChanged, DeadLetterNotFound, NotRequeueable
from gateway.services.runs import utc
from worker import audit
from worker.db import session_scope
from worker.envelope import Junk, open_envelope
from worker.masking import mask_text, mask_value
from worker.models.core import DeadLetter

# The most dead letters one bulk requeue acts on.
MAX_BULK = 1000
RAW_SHOWN_CHARS = 64 * 1024


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters: every field narrows the match (None: any)."""

    reason: str | None = None
    queue: str | None = None
    task_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _where(query: Select[Any], given: LetterFilter) -> Select[Any]:  # any selected columns
    if given.reason:
        query = query.where(DeadLetter.reason == given.reason)
    if given.queue:
        query = query.where(DeadLetter.queue == given.queue)
    if given.task_name:
        query = query.where(DeadLetter.task_name == given.task_name)
    if given.since is not None:
        query = query.where(DeadLetter.at >= utc(given.since))
    if given.until is not None:
        query = query.where(DeadLetter.at < utc(given.until))
    return query


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _requeueable(row: DeadLetter) -> bool:
    return row.raw is not None and not isinstance(open_envelope(row.raw), Junk)


def _summary(row: DeadLetter) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": _aware(row.at),
        "reason": row.reason,
        "task_name": row.task_name,
        "task_id": row.task_id,
        "queue": row.queue,
        "source": row.source,
        "detail": row.detail,
        "raw_size": row.raw_size,
        "requeueable": _requeueable(row),
    }


def search(given: LetterFilter, limit: int = 50, before_id: int | None = None) -> dict[str, Any]:
    """One page of dead letters, newest first; `next_before_id` continues (None on the last page)."""
    query = _where(select(DeadLetter), given)
    if before_id is not None:
        query = query.where(DeadLetter.id < before_id)
    with session_scope() as session:
        rows = list(session.scalars(query.order_by(DeadLetter.id.desc()).limit(limit + 1)))
        page = [_summary(row) for row in rows[:limit]]
    return {"dead_letters": page, "next_before_id": page[-1]["id"] if len(rows) > limit else None}


def _masked_raw(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    text = raw[:RAW_SHOWN_CHARS].decode("utf-8", errors="replace")
    envelope = open_envelope(raw)
    if isinstance(envelope, Junk):
        return mask_text(text)
    # A message's body travels base64-encoded: shown decoded, so its masked secrets are the ones a reader sees.
    body = envelope.get("body", "")
    try:
        decoded = base64.b64decode(body, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        decoded = str(body)
    shown = {**envelope, "body": mask_text(decoded[:RAW_SHOWN_CHARS])}
    return json.dumps(mask_value("message", shown), ensure_ascii=False, indent=2, default=str)


def show(letter_id: int) -> dict[str, Any]:
    """One dead letter with its excerpt and its raw message, secrets masked."""
    with session_scope() as session:
        row = session.get(DeadLetter, letter_id)
        if row is None:
            raise DeadLetterNotFound(f"no dead letter {letter_id}")
        return {**_summary(row), "body_excerpt": mask_text(row.body_excerpt), "raw": _masked_raw(row.raw)}


def _publish(row: DeadLetter) -> str:
    """Send the kept message to its queue again; the queue."""
    from worker.application import app

    envelope = open_envelope(row.raw or b"")
    if isinstance(envelope, Junk):
        raise NotRequeueable(f"dead letter {row.id} ({row.reason}) holds no task message: {envelope.detail}")
    properties = envelope["properties"]
    queue = properties["delivery_info"].get("routing_key") or row.queue
    body = envelope["body"]
    payload = base64.b64decode(body) if properties.get("body_encoding") == "base64" else body.encode("utf-8")
    with app.producer_or_acquire() as producer:
        producer.publish(
            payload,
            exchange="",
            routing_key=queue,
            headers=envelope.get("headers") or {},
            content_type=envelope.get("content-type") or "application/json",
            content_encoding=envelope.get("content-encoding") or "utf-8",
            priority=properties.get("priority"),
            retry=True,
        )
    return str(queue)


def requeue(letter_id: int, actor: str) -> dict[str, Any]:
    """Publish one dead letter's message again and remove it from the table (audited)."""
    with session_scope() as session:
        row = session.get(DeadLetter, letter_id, with_for_update=True)
        if row is None:
            raise DeadLetterNotFound(f"no dead letter {letter_id}")
        queue = _publish(row)
        summary = _summary(row)
        audit.record(session, "dead_letter", "dead_letter_requeued", str(letter_id), actor=actor, queue=queue,
                     reason=row.reason, task_name=row.task_name, task_id=row.task_id)  # fmt: skip
        session.delete(row)
    return {**summary, "queue": queue}


def count_requeueable(given: LetterFilter) -> int:
    """How many dead letters matching the filter hold a message that can be requeued."""
    query = _where(select(DeadLetter), given).where(DeadLetter.raw.is_not(None)).limit(MAX_BULK + 1)
    with session_scope() as session:
        return sum(1 for row in session.scalars(query) if _requeueable(row))


def requeue_matching(given: LetterFilter, expected: int, actor: str) -> list[int]:
    """Requeue every requeueable dead letter matching the filter, when they are still the dry run's count."""
    found = count_requeueable(given)
    if found != expected or found > MAX_BULK:
        raise CountChanged(f"the filter matches {found} requeueable dead letters, not {expected}: count again")
    query = _where(select(DeadLetter.id), given).where(DeadLetter.raw.is_not(None)).order_by(DeadLetter.id)
    with session_scope() as session:
        ids = list(session.scalars(query.limit(MAX_BULK + 1)))
    done = []
    for letter_id in ids:
        try:
            requeue(letter_id, actor)
        except (NotRequeueable, DeadLetterNotFound):
            continue  # junk, or requeued by someone else meanwhile
        done.append(letter_id)
    return done


def discard(letter_id: int, actor: str, reason: str) -> dict[str, Any]:
    """Delete one dead letter for good, with the reason in the audit trail."""
    with session_scope() as session:
        row = session.get(DeadLetter, letter_id)
        if row is None:
            raise DeadLetterNotFound(f"no dead letter {letter_id}")
        summary = _summary(row)
        audit.record(session, "dead_letter", "dead_letter_discarded", str(letter_id), actor=actor,
                     why=reason, reason=row.reason, task_name=row.task_name, task_id=row.task_id)  # fmt: skip
        session.execute(delete(DeadLetter).where(DeadLetter.id == letter_id))
    return summary


def counts(given: LetterFilter) -> dict[str, int]:
    """Dead letters matching the filter, per reason."""
    selected = cast("Select[Any]", select(DeadLetter.reason, func.count()))
    query = _where(selected, given).group_by(DeadLetter.reason)
    with session_scope() as session:
        return {str(reason): int(n) for reason, n in session.execute(query).all()}

"""Tasks that ended FAILURE, as the result backend keeps them (`result_extended`: name, arguments, queue),
and their retry: the same task and arguments sent again under a new id (audited)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.services.errors import FailedTaskNotFound, NotRequeueable
from worker import audit
from worker.constants import REDIS_KEY_PREFIX
from worker.db import session_scope

# Result keys read per SCAN step, and the most failures one listing collects (results expire after a day).
SCAN_COUNT = 500
MAX_LISTED = 2000
RETRIED_PREFIX = REDIS_KEY_PREFIX + "failed:retried:"
RETRIED_TTL_S = 7 * 24 * 3600


def _backend() -> Any:
    from worker.application import app

    return app.backend


def _prefix() -> str:
    key = _backend().task_keyprefix
    return key.decode() if isinstance(key, bytes) else str(key)


def _client() -> Any:
    """The result backend's Redis client (bytes replies)."""
    return _backend().client


def _parse(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def _summary(meta: dict[str, Any], retried_as: str | None) -> dict[str, Any]:
    done = meta.get("date_done")
    return {
        "task_id": str(meta.get("task_id", "")),
        "name": meta.get("name"),
        "queue": meta.get("queue"),
        "exception": _exception(meta.get("result")),
        "date_done": datetime.fromisoformat(done).replace(tzinfo=UTC) if isinstance(done, str) else None,
        "retried_as": retried_as,
    }


def _exception(result: Any) -> str:
    if isinstance(result, dict):
        return f"{result.get('exc_type', 'Exception')}: {result.get('exc_message', '')}"[:500]
    return str(result)[:500]


def search(name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Failed tasks kept in the result backend (newest first), optionally of one task name."""
    client, prefix = _client(), _prefix()
    found: list[dict[str, Any]] = []
    for keys in _batches(client, prefix + "*"):
        for meta in (_parse(raw) for raw in client.mget(keys)):
            if meta and meta.get("status") == "FAILURE" and (name is None or meta.get("name") == name):
                found.append(meta)
        if len(found) >= MAX_LISTED:
            break
    found.sort(key=lambda m: str(m.get("date_done") or ""), reverse=True)
    page = found[:limit]
    retried = client.mget([RETRIED_PREFIX + str(m.get("task_id")) for m in page]) if page else []
    return [_summary(m, r.decode() if r else None) for m, r in zip(page, retried, strict=True)]


def _batches(client: Any, pattern: str) -> Any:
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=SCAN_COUNT)
        if keys:
            yield keys
        if cursor == 0:
            return


def retry(task_id: str, actor: str) -> dict[str, Any]:
    """Send a failed task again (same name, arguments and queue, new id); the new task id."""
    meta = _parse(_client().get(_prefix() + task_id))
    if meta is None or meta.get("status") != "FAILURE":
        raise FailedTaskNotFound(f"no failed task {task_id} in the result backend")
    name, args, kwargs = meta.get("name"), meta.get("args"), meta.get("kwargs")
    if not isinstance(name, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
        raise NotRequeueable(f"task {task_id}: its name and arguments were not kept whole; send it again by hand")
    from worker.application import app

    sent = app.send_task(name, args=args, kwargs=kwargs, queue=meta.get("queue") or None, priority=5)
    _client().set(RETRIED_PREFIX + task_id, sent.id, ex=RETRIED_TTL_S)
    with session_scope() as session:
        audit.record(session, "task", "failed_task_retried", task_id, actor=actor, name=name, new_task_id=sent.id)
    return {"task_id": task_id, "name": name, "new_task_id": sent.id}

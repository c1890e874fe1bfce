"""The fleet's result backend: Celery's Redis backend, with a result stored in one atomic round trip."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.exceptions import BackendStoreError, TaskRevokedError
from celery.utils.saferepr import saferepr
from kombu.utils.encoding import bytes_to_str

# Extended results (`result_extended`) store a task's arguments again beside its result. Arguments larger
# than this (about, in JSON) are stored as the message's `argsrepr`/`kwargsrepr` instead: a 5,000-event
# ledger batch would otherwise store its 1.4 MB of events once more with every result, and every reader
# would decode them. Twice the ledger's default `payload_limit_bytes` (64 KiB): a single event keeps its own.
EXTENDED_ARGS_MAX_BYTES = 128 * 1024
# The longest repr stored in their place: Celery's own limit for `argsrepr` (`argsrepr_maxsize`).
EXTENDED_REPR_MAX = 1024

# Store a task's state unless it is already final: SUCCESS (Celery's own rule: a late duplicate of a task,
# or a retry, must not overwrite its success) and REVOKED (ours: a cancelled run stays cancelled for its
# producer, whatever a stage still running or a chord's error writes afterwards). ARGV[4] = 1 forces the
# write (a cancel, which knows better). Celery does this as a GET and then a SET + PUBLISH: two round trips
# per state change, and a race between them; the script is one, atomic.
STORE_RESULT_LUA = """
local key, value, expires, force = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
if force ~= '1' then
    local current = redis.call('GET', key)
    if current then
        local ok, meta = pcall(cjson.decode, current)
        if ok and type(meta) == 'table' and (meta['status'] == 'SUCCESS' or meta['status'] == 'REVOKED') then
            return 0
        end
    end
end
if expires > 0 then
    redis.call('SETEX', key, expires, value)
else
    redis.call('SET', key, value)
end
redis.call('PUBLISH', key, value)
return 1
"""


def larger_than(value: Any, limit: int) -> bool:
    """Whether the JSON of a value is longer than `limit` (about: characters, not bytes); stops once it is."""
    size, stack = 0, [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        # Each item counts its own comma: a string its quotes too, a dict its braces and colons.
        if kind is str:
            size += len(item) + 3
        elif kind is dict:
            size += 2 + len(item)
            stack += item.keys()
            stack += item.values()
        elif kind is list or kind is tuple:
            size += 2
            stack += item
        else:
            size += 3  # a number, true, false or null
        if size > limit:
            return True
    return False


def _summary(representation: Any, value: Any) -> str:
    text = representation if isinstance(representation, str) else saferepr(value, EXTENDED_REPR_MAX)
    return text[:EXTENDED_REPR_MAX]


class FleetRedisBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend; a stored SUCCESS or REVOKED is final, and a store is one script call.

    Extended results keep arguments up to EXTENDED_ARGS_MAX_BYTES; larger ones are stored as their repr.
    """

    def _store_result(
        self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        self._store_meta(task_id, meta, state, force=False)
        return result

    def _get_result_meta(
        self, result: Any, state: str, traceback: Any, request: Any, format_date: bool = True, encode: bool = False
    ) -> dict[str, Any]:
        meta: dict[str, Any] = super()._get_result_meta(result, state, traceback, request, format_date, encode)
        for key in ("args", "kwargs"):
            value = meta.get(key)
            if value is not None and not encode and larger_than(value, EXTENDED_ARGS_MAX_BYTES):
                meta[key] = _summary(getattr(request, f"{key}repr", None), value)
        return meta

    def revoke_result(self, task_id: str, reason: str) -> None:
        """Resolve a task as REVOKED even when a late write already stored another state (a cancelled run)."""
        result = self.encode_result(TaskRevokedError(reason), states.REVOKED)
        meta = self._get_result_meta(result=result, state=states.REVOKED, traceback=None, request=None)
        meta["task_id"] = task_id
        self._ensure_retryable(self._store_meta, task_id, meta, states.REVOKED, force=True)

    def _store_meta(self, task_id: str, meta: dict[str, Any], state: str, force: bool) -> None:
        value = self.encode(meta)
        if isinstance(value, str) and len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError("value too large for Redis backend", state=state, task_id=task_id)
        expires = self.failure_expires if state == states.FAILURE else self.expires
        args = (self.get_key_for_task(task_id), value, int(expires or 0), force)
        self.ensure(self._call_store, args)

    def _call_store(self, key: str, value: Any, expires: int, force: bool) -> None:
        self._store_script(keys=[key], args=[value, expires, "1" if force else "0"], client=self.client)

    @cached_property
    def _store_script(self) -> Any:
        return self.client.register_script(STORE_RESULT_LUA)


class FleetSentinelBackend(FleetRedisBackend, SentinelBackend):  # type: ignore[misc]
    """The same result rules on the master that Redis Sentinels name (`sentinel://` URLs)."""


def backend_url(url: str) -> str:
    """The `result_backend` setting for a backend URL: ours for Redis and Sentinel, anything else as given."""
    scheme = url.partition("://")[0]
    chosen = {"redis": FleetRedisBackend, "rediss": FleetRedisBackend, "sentinel": FleetSentinelBackend}.get(scheme)
    if chosen is not None:
        return f"{chosen.__module__}:{chosen.__name__}+{url}"
    return url

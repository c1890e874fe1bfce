"""The fleet's result backend: Celery's Redis backend, with a result stored in one atomic round trip."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError, TaskRevokedError
from kombu.utils.encoding import bytes_to_str

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


class FleetRedisBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend; a stored SUCCESS or REVOKED is final, and a store is one script call."""

    def _store_result(
        self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        self._store_meta(task_id, meta, state, force=False)
        return result

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


def backend_url(url: str) -> str:
    """The `result_backend` setting for a backend URL: ours for Redis, anything else as given."""
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss"):
        return f"{FleetRedisBackend.__module__}:{FleetRedisBackend.__name__}+{url}"
    return url

"""Bounds on requests that wait (`?wait=true`, ping answers, event streams): per key and per API process.

A waiting request holds one of the API's worker threads for as long as it waits; unbounded, a single key
could hold them all and every other route would queue behind it. Past the bound the caller gets 429 (its
own key's share is used up) or 503 (the process's), both with Retry-After.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import Counter
from collections.abc import Iterator

from gateway.problems import ApiProblem


class Slot:
    """One waiting request's place; released once, however often `release` is called."""

    def __init__(self, owner: WaitSlots, key_id: str) -> None:
        self._owner, self._key_id, self._held = owner, key_id, True

    def release(self) -> None:
        """Give the place back."""
        if self._held:
            self._held = False
            self._owner._release(self._key_id)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class WaitSlots:
    """Counts the requests waiting now, per key and in all, and refuses one past either bound."""

    def __init__(self, per_key: int, total: int, retry_after_s: float) -> None:
        self.per_key = per_key
        self.total = total
        self.retry_after = str(max(1, math.ceil(retry_after_s)))
        self._lock = threading.Lock()
        self._by_key: Counter[str] = Counter()
        self._count = 0

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return self._count

    def acquire(self, key_id: str) -> Slot:
        """A place for one more waiting request of `key_id`; ApiProblem 429 or 503 past a bound."""
        with self._lock:
            if self._by_key[key_id] >= self.per_key:
                detail = f"this key already has {self.per_key} requests waiting; retry later or do not wait"
                raise ApiProblem(429, "too_many_waiting", detail, {"Retry-After": self.retry_after})
            if self._count >= self.total:
                detail = f"the API already has {self.total} requests waiting; retry later or do not wait"
                raise ApiProblem(503, "too_many_waiting", detail, {"Retry-After": self.retry_after})
            self._by_key[key_id] += 1
            self._count += 1
        return Slot(self, key_id)

    def _release(self, key_id: str) -> None:
        with self._lock:
            self._by_key[key_id] -= 1
            if self._by_key[key_id] <= 0:
                del self._by_key[key_id]
            self._count -= 1

    def hold_while(self, slot: Slot, items: Iterator[bytes]) -> Iterator[bytes]:
        """`items`, with the slot released when they end, fail or are dropped unread (a client gone early)."""

        def held() -> Iterator[bytes]:
            try:
                yield from items
            finally:
                slot.release()

        stream = held()
        # A generator closed before its first item never runs its `finally`: its collection releases instead.
        weakref.finalize(stream, slot.release)
        return stream

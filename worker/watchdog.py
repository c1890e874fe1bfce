"""Watchdog: a worker whose queues have depth while it receives nothing has stopped consuming; it exits.

Celery workers are known to stop consuming silently after some broker reconnects. The reference is the set of
queues the worker was started with (not the consumers it currently holds, which is what goes missing), so a
consumer lost for any reason is caught. The worker exits with EXIT_STALLED through a warm shutdown, and its
supervisor (`agent up`, docker, systemd) starts it again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import signals
from celery.worker import state

from worker.constants import EXIT_STALLED
from worker.fleet_status import priority_lists
from worker.redis_client import get_redis
from worker.settings import get_settings

log = logging.getLogger("fleet.watchdog")


@dataclass(frozen=True)
class Observation:
    """One look at the worker: its queues' depth, tasks received so far, requests running."""

    at: float
    depth: int
    received: int
    active: int


@dataclass
class Watch:
    """The pure decision: progress resets the clock; depth without progress for `stall_after_s` is a stall."""

    stall_after_s: float
    since: float | None = None
    received: int = -1
    history: list[Observation] = field(default_factory=list)

    def observe(self, seen: Observation) -> str | None:
        """None while healthy; the evidence (a sentence) once the worker has stalled."""
        progressed = seen.received != self.received or seen.active > 0 or seen.depth == 0
        self.received = seen.received
        if progressed or self.since is None:
            self.since, self.history = seen.at, []
        self.history = [*self.history[-4:], seen]
        if seen.at - self.since < self.stall_after_s:
            return None
        return (
            f"queues hold {seen.depth} messages, yet nothing was received and nothing ran for "
            f"{seen.at - self.since:.0f} s (received {seen.received} in all; depths "
            f"{[o.depth for o in self.history]})"
        )


_received = {"count": 0}


def _count_received(**_: Any) -> None:
    _received["count"] += 1


def _depth(queues: list[str]) -> int:
    client = get_redis()
    names = [name for queue in queues for name in priority_lists(queue)]
    return sum(int(client.llen(name)) for name in names)


def _loop(watch: Watch, queues: list[str], interval_s: float, stop: threading.Event) -> None:
    while not stop.wait(interval_s):
        try:
            seen = Observation(time.monotonic(), _depth(queues), _received["count"], len(state.active_requests))
        except redis.RedisError as exc:  # Redis away: not a stall of this worker; the reconnect logic handles it
            log.warning("watchdog could not read queue depths: %s", exc, extra={"category": "system"})
            continue
        evidence = watch.observe(seen)
        if evidence:
            log.critical(
                "watchdog: worker stopped consuming from %s: %s; exiting to be restarted",
                ",".join(queues),
                evidence,
                extra={"category": "system", "queues": queues},
            )
            state.should_stop = EXIT_STALLED  # the consumer loop turns this into a warm shutdown
            return


def _start(sender: Any = None, **_: Any) -> None:
    """Start the watchdog thread in the worker's main process, on the queues it was started with."""
    stall_after_s = get_settings().watchdog_stall_s
    if not stall_after_s or sender is None:
        return
    queues = sorted(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)  # the -Q it was started with
    interval_s = max(0.5, min(stall_after_s / 4, 15.0))
    thread = threading.Thread(
        target=_loop,
        args=(Watch(stall_after_s), queues, interval_s, threading.Event()),
        name="fleet-watchdog",
        daemon=True,
    )
    thread.start()


def install() -> None:
    """Count received tasks and start the watchdog when a worker is ready (create_app calls it)."""
    signals.task_received.connect(_count_received, weak=False)
    signals.worker_ready.connect(_start, weak=False)

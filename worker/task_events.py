"""The worker's Celery consumer: dead letters recorded (worker/dead_letters.py) and task events sent in batches."""

from __future__ import annotations

import logging
import time

from worker.dead_letters import DeadLetterConsumer

log = logging.getLogger("fleet.task_events")

# Task events (task-received, -started, -succeeded, for Flower) wait this long in the worker's buffer and leave
# together, as Celery's own `task.multi` message (a list of events, which every event receiver reads), or at 24
# events: Celery's default publishes each on the next loop turn, three round trips per task (docs/PERFORMANCE.md).
EVENTS_FLUSH_S = 0.1


class FleetConsumer(DeadLetterConsumer):
    """DeadLetterConsumer with task events batched (Celery's private `_flush_events`: docs/PATCHES.md)."""

    _events_flush_at = 0.0  # when the pending flush is due (monotonic seconds); 0 when none is

    def on_send_event_buffered(self) -> None:
        """Publish the buffered task events within EVENTS_FLUSH_S (one timer at a time).

        A timer that did not fire by its time plus EVENTS_FLUSH_S (lost when the consumer restarted its loop
        after a connection error) is replaced by the next event.
        """
        now = time.monotonic()
        if self.hub and now > self._events_flush_at + EVENTS_FLUSH_S:
            self._events_flush_at = now + EVENTS_FLUSH_S
            self.hub.call_later(EVENTS_FLUSH_S, self._flush_buffered_events)

    def _flush_buffered_events(self) -> None:
        self._events_flush_at = 0.0
        self._flush_events()

    def stop(self) -> None:
        """Publish what is buffered before the event connection closes."""
        self._flush_quietly()
        super().stop()

    def shutdown(self) -> None:
        """Publish what is buffered before the event connection closes."""
        self._flush_quietly()
        super().shutdown()

    def _flush_quietly(self) -> None:
        try:
            self._flush_events()
        except Exception as exc:  # noqa: BLE001  (the broker may be gone: events are best effort)
            log.debug("task events not flushed at stop: %s", exc)

"""The bare no-op app with the fleet's monitoring settings: task events (for Flower), extended results and
STARTED states, and none of the fleet's code: what those settings alone cost per task."""

from __future__ import annotations

from bench.bare import app, collect, noop

app.conf.update(
    worker_send_task_events=True,
    task_send_sent_event=True,
    result_extended=True,
    task_track_started=True,
)

__all__ = ["app", "collect", "noop"]

"""The bare no-op app with the fleet's monitoring settings: task events (for Flower), extended results and
STARTED states, and none of the fleet's code: what those settings alone cost per task.

BENCH_MONITORED (comma-separated subset of events,extended,started; default all) picks which ones, for
`python -m bench.overhead --breakdown`.
"""

from __future__ import annotations

import os

from bench.bare import app, collect, noop

_chosen = set(os.environ.get("BENCH_MONITORED", "events,extended,started").split(","))
app.conf.update(
    worker_send_task_events="events" in _chosen,
    task_send_sent_event="events" in _chosen,
    result_extended="extended" in _chosen,
    task_track_started="started" in _chosen,
)

__all__ = ["app", "collect", "noop"]

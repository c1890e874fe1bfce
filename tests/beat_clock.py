"""Run the fleet's real Beat scheduler against a fake clock: `python -m tests.beat_clock T1 T2 ...`.

Beat's only notion of time is `app.now()` (entries, crontab `is_due`, the heap); this test hook sets it
to each ISO time given (in FLEET_TIMEZONE when naive), ticks the real `celery.beat.Scheduler` there, and
prints one JSON line per clock reading: which tasks it sent and their ids. Messages go to the real broker.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from celery.beat import Scheduler

from worker import app
from worker.settings import get_settings


class RecordingScheduler(Scheduler):
    """The default in-memory scheduler, remembering what it sent."""

    sent: ClassVar[list[dict[str, str]]] = []

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        result = super().apply_async(entry, producer, advance, **kwargs)
        self.sent.append({"task": entry.task, "id": result.id})
        return result


def main(readings: list[str]) -> None:
    zone = ZoneInfo(get_settings().timezone)
    clock = [datetime.fromisoformat(readings[0]).replace(tzinfo=zone)]
    app.now = lambda: clock[0]  # type: ignore[method-assign]
    scheduler = RecordingScheduler(app, lazy=False)
    for reading in readings:
        clock[0] = datetime.fromisoformat(reading).replace(tzinfo=zone)
        RecordingScheduler.sent = []
        for _ in range(5):  # each tick sends at most the one entry at the top of the heap
            scheduler.tick()
        sys.stdout.write(json.dumps({"at": reading, "sent": RecordingScheduler.sent}) + "\n")
    scheduler.close()


if __name__ == "__main__":
    main(sys.argv[1:])

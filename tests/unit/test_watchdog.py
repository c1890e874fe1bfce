"""The watchdog's decision: depth without progress for long enough is a stall; any progress resets the clock."""

from __future__ import annotations

import pytest

from worker.watchdog import Observation, Watch


def _run(watch: Watch, looks: list[tuple[float, int, int, int]]) -> list[str | None]:
    return [watch.observe(Observation(*look)) for look in looks]


def test_a_queue_with_depth_and_nothing_received_for_the_limit_is_a_stall() -> None:
    verdicts = _run(Watch(10), [(0, 5, 3, 0), (5, 6, 3, 0), (10, 7, 3, 0)])

    assert verdicts[:2] == [None, None]
    assert verdicts[2] is not None and "queues hold 7 messages" in verdicts[2] and "10 s" in verdicts[2]


@pytest.mark.parametrize(
    ("looks", "why"),
    [
        ([(0, 5, 3, 0), (6, 5, 4, 0), (12, 5, 5, 0)], "a message received resets the clock"),
        ([(0, 5, 3, 0), (6, 5, 3, 1), (12, 5, 3, 1)], "a task running is progress"),
        ([(0, 0, 3, 0), (6, 0, 3, 0), (12, 0, 3, 0)], "empty queues are idle, not stalled"),
        ([(0, 5, 3, 0), (6, 0, 3, 0), (12, 5, 3, 0)], "a queue that emptied restarts the clock"),
    ],
)
def test_progress_or_empty_queues_never_trigger_it(looks: list[tuple[float, int, int, int]], why: str) -> None:
    assert _run(Watch(10), looks) == [None, None, None], why

"""`agent up`'s restart policy: a doubling delay within a budget of restarts per window, then a long wait."""

from __future__ import annotations

import pytest

from worker.restart_policy import Restart, RestartPolicy, describe_exit, explain

POLICY = RestartPolicy(budget=5, window_s=300, first_delay_s=1, max_delay_s=30, cooldown_s=300)


@pytest.mark.parametrize(
    ("earlier", "now", "expected"),
    [
        ([], 1000, Restart(1, 0, over_budget=False)),
        ([990], 1000, Restart(2, 1, over_budget=False)),
        ([960, 980, 990], 1000, Restart(8, 3, over_budget=False)),
        ([950, 960, 970, 980], 1000, Restart(16, 4, over_budget=False)),
        ([950, 960, 970, 980, 990], 1000, Restart(300, 5, over_budget=True)),
        ([0, 10, 20, 30, 40, 50, 60], 1000, Restart(1, 0, over_budget=False)),
        ([100, 200, 800, 900], 1000, Restart(4, 2, over_budget=False)),
        ([700.1, 800, 900, 950, 990], 1000, Restart(300, 5, over_budget=True)),
        ([700, 800, 900, 950, 990], 1000, Restart(16, 4, over_budget=False)),
    ],
    ids=[
        "first-exit",
        "second-exit",
        "fourth-exit",
        "fifth-exit",
        "budget-spent",
        "old-restarts-are-forgotten",
        "only-the-window-counts",
        "five-in-the-window",
        "the-oldest-just-left-the-window",
    ],
)
def test_the_delay_doubles_within_the_budget_and_a_spent_budget_means_the_long_wait(
    earlier: list[float], now: float, expected: Restart
) -> None:
    assert POLICY.decide(earlier, now) == expected


def test_the_delay_is_capped() -> None:
    policy = RestartPolicy(budget=20, window_s=1000, first_delay_s=1, max_delay_s=30)
    assert [policy.decide([0.0] * n, 10).delay_s for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_child_that_keeps_crashing_is_restarted_once_per_cooldown_for_ever() -> None:
    # Given a child that exits as soon as it starts, restarted whenever the policy says
    now, restarts, waits = 0.0, [], []
    for _ in range(12):
        decision = POLICY.decide(restarts, now)
        waits.append(decision.delay_s)
        now += decision.delay_s
        restarts.append(now)
    # Then it is never given up: quick restarts while the budget lasts, then the long wait, and again
    assert waits == [1, 2, 4, 8, 16, 300, 2, 4, 8, 16, 300, 2]
    # And no window ever holds more restarts than the budget
    assert max(sum(1 for t in restarts if start <= t < start + 300) for start in restarts) == 5


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (1, "exited with code 1"),
        (0, "exited with code 0"),
        (70, "exited with code 70 (the watchdog: it had stopped consuming)"),
        (-9, "was killed by SIGKILL (9)"),
        (-15, "was killed by SIGTERM (15)"),
        (-200, "was killed by an unknown signal (200)"),
    ],
)
def test_an_exit_is_described_by_its_code_or_signal(code: int, words: str) -> None:
    assert describe_exit(code) == words


def test_the_console_says_why_when_and_how_many_restarts_are_left() -> None:
    soon = explain("worker1", -9, Restart(4, 2, over_budget=False), POLICY)
    assert soon == "worker1 was killed by SIGKILL (9); restarting it in 4s (3 of 5 in 5 min)"
    later = explain("worker1", 1, Restart(300, 5, over_budget=True), POLICY)
    assert later == (
        "worker1 exited with code 1; 5 restarts in the last 5 min spent its budget of 5: waiting 300s before"
        " starting it again (everything else keeps running)"
    )

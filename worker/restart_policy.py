"""When `agent up` restarts a child that exited: backoff within a budget of restarts per window, never giving up.

A pure decision, like procrastinate's retry strategy: given when a child was restarted before, how long to wait
before the next start. `agent up` once stopped the whole fleet (API, Flower, Beat) after a worker's fifth exit
over its lifetime; now each child has its own budget, a spent budget means a long wait (said on the console),
and nothing else stops.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass

from worker.constants import EXIT_STALLED


@dataclass(frozen=True, slots=True)
class Restart:
    """The decision for one exit: wait `delay_s`, then start the child again."""

    delay_s: float
    recent: int  # restarts of this child within the window, before this one
    over_budget: bool  # the window's budget is spent: the long wait


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """At most `budget` restarts per child in `window_s`, each after a doubling delay; then `cooldown_s` apart."""

    budget: int = 5
    window_s: float = 300.0
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    cooldown_s: float = 300.0

    def decide(self, earlier: Sequence[float], now: float) -> Restart:
        """When to restart a child that exited at `now`, given the (monotonic) times of its earlier restarts."""
        recent = sum(1 for at in earlier if now - at < self.window_s)
        if recent >= self.budget:
            return Restart(self.cooldown_s, recent, over_budget=True)
        return Restart(min(self.first_delay_s * 2**recent, self.max_delay_s), recent, over_budget=False)


def describe_exit(returncode: int) -> str:
    """How a child ended, in words: its exit code, or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by {name} ({-returncode})"
    if returncode == EXIT_STALLED:
        return f"exited with code {returncode} (the watchdog: it had stopped consuming)"
    return f"exited with code {returncode}"


def explain(name: str, returncode: int, decision: Restart, policy: RestartPolicy) -> str:
    """The console line saying why and when a child restarts."""
    ended = f"{name} {describe_exit(returncode)}"
    minutes = f"{policy.window_s / 60:g} min"
    if decision.over_budget:
        return (
            f"{ended}; {decision.recent} restarts in the last {minutes} spent its budget of {policy.budget}:"
            f" waiting {decision.delay_s:.0f}s before starting it again (everything else keeps running)"
        )
    return f"{ended}; restarting it in {decision.delay_s:g}s ({decision.recent + 1} of {policy.budget} in {minutes})"

"""Classify each signal as normal, caution or warning (정상 / 주의 / 경고) against configured thresholds."""

from __future__ import annotations

from enum import StrEnum

from beat.config import Threshold
from beat.summary import Stat


class Level(StrEnum):
    """How a signal stands against its thresholds."""

    NORMAL = "normal"
    CAUTION = "caution"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """0 normal, 1 caution, 2 warning."""
        return list(Level).index(self)


def classify(value: float, threshold: Threshold) -> Level:
    """The level of one value: at or past `warning` is warning, at or past `caution` is caution."""
    if threshold.direction == "above":
        if value >= threshold.warning:
            return Level.WARNING
        return Level.CAUTION if value >= threshold.caution else Level.NORMAL
    if value <= threshold.warning:
        return Level.WARNING
    return Level.CAUTION if value <= threshold.caution else Level.NORMAL


def classify_all(signals: dict[str, Stat], thresholds: dict[str, Threshold]) -> dict[str, Level]:
    """The level of every signal that has a threshold, judged on the threshold's statistic."""
    return {name: classify(signals[name].get(rule.stat), rule) for name, rule in thresholds.items() if name in signals}

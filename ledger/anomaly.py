"""Anomaly scores on a log scale: an EWMA baseline and a robust median/MAD score after a warm-up."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.config import AnomalyConfig

# MAD of a normal distribution is 0.6745 sigma; the floor keeps constant series from flagging any change.
_MAD_TO_SIGMA = 1.4826
_MAD_FLOOR = 0.05
_SD_FLOOR = 0.05


@dataclass(slots=True)  # not frozen: made for every amount (ledger/body.py, Decoded)
class Score:
    """How unusual a value is against its baseline; flagged values do not feed the baseline."""

    value: float
    robust: float
    ewma: float
    flagged: bool
    warming_up: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored on alerts and results."""
        return {"log_value": round(self.value, 4), "robust_z": round(self.robust, 2), "ewma_z": round(self.ewma, 2)}


def log_amount(amount: Decimal) -> float:
    """Amounts on a log scale, so 10 -> 100 weighs like 100 -> 1000."""
    return math.log1p(abs(float(amount)))


def score(baseline: dict[str, Any], value: float, config: AnomalyConfig) -> Score:
    """Score a value against a baseline without changing it."""
    count = int(baseline.get("n", 0))
    window = baseline.get("window", ())
    if count < config.warmup or len(window) < 2:
        return Score(value, 0.0, 0.0, False, True)
    sd = math.sqrt(max(float(baseline.get("var", 0.0)), 0.0))
    ewma = abs(value - float(baseline.get("mean", value))) / max(sd, _SD_FLOOR)
    if ewma <= config.threshold:
        # Both scores must exceed the threshold; the median/MAD (two sorts) is only needed when this one does.
        return Score(value, 0.0, ewma, False, False)
    median = statistics.median(window)
    mad = statistics.median([abs(x - median) for x in window])
    robust = abs(value - median) / max(_MAD_TO_SIGMA * mad, _MAD_FLOOR)
    flagged = robust > config.threshold
    return Score(value, robust, ewma, flagged, False)


def feed(baseline: dict[str, Any], value: float, config: AnomalyConfig) -> dict[str, Any]:
    """The baseline after one more normal value (exponentially weighted mean and variance, and the window)."""
    count = int(baseline.get("n", 0))
    if count == 0:
        mean, var = value, 0.0
    else:
        mean = float(baseline["mean"])
        diff = value - mean
        increment = config.alpha * diff
        mean += increment
        var = (1 - config.alpha) * (float(baseline.get("var", 0.0)) + diff * increment)
    window = baseline.get("window", [])[1 - config.window :]  # the window is >= 5 long (AnomalyConfig)
    window.append(round(value, 6))
    return {"n": count + 1, "mean": mean, "var": var, "window": window}


def observe(baseline: dict[str, Any], amount: Decimal, config: AnomalyConfig) -> tuple[Score, dict[str, Any]]:
    """Score an amount and return the baseline to keep: unchanged when the amount was flagged."""
    result = score(baseline, log_amount(amount), config)
    if result.flagged:
        return result, baseline
    return result, feed(baseline, result.value, config)


def rate_score(history: list[float], value: float, config: AnomalyConfig) -> Score:
    """Score a per-minute rate (events, or rejections per event) against the minutes before it."""
    baseline: dict[str, Any] = {}
    for past in history:
        baseline = feed(baseline, past, config)
    return score(baseline, value, config)


def watch_minute(
    history: list[tuple[int, int]], events: int, rejected: int, config: AnomalyConfig
) -> list[tuple[str, Score]]:
    """Flags for one finished minute: its event count and its rejection share against the minutes before it."""
    found = []
    rate = rate_score([float(n) for n, _ in history], float(events), config)
    if rate.flagged:
        found.append(("event_rate", rate))
    shares = [r / n for n, r in history if n]
    share = rate_score(shares, rejected / events if events else 0.0, config)
    if share.flagged:
        found.append(("rejection_rate", share))
    return found

"""Per api_version counts by status and code, and whether a version departs from the previous one."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

# A version departs when its rejection rate moves by more than this plus 3 standard errors,
# or when its mix of codes differs by more than this total variation distance.
RATE_MARGIN = 0.05
MIX_MARGIN = 0.25
MIN_EVENTS = 20


@dataclass
class VersionStats:
    """Counts of one api_version."""

    api_version: str
    statuses: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    departs: bool = False
    why: str = ""

    @property
    def total(self) -> int:
        """Events counted, skipped ones excluded."""
        return sum(n for status, n in self.statuses.items() if status != "skipped")

    @property
    def rejection_rate(self) -> float:
        """Rejected events per counted event."""
        return self.statuses.get("rejected", 0) / self.total if self.total else 0.0


def _key(version: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", version)]


def _mix(codes: dict[str, int]) -> dict[str, float]:
    total = sum(codes.values())
    return {code: n / total for code, n in codes.items()} if total else {}


def compare(rows: list[VersionStats]) -> list[VersionStats]:
    """Rows in version order, each flagged when it departs from the version before it."""
    ordered = sorted(rows, key=lambda row: _key(row.api_version))
    for previous, current in itertools.pairwise(ordered):
        if previous.total < MIN_EVENTS or current.total < MIN_EVENTS:
            continue
        p = previous.rejection_rate
        margin = RATE_MARGIN + 3 * math.sqrt(max(p * (1 - p), 1e-9) / current.total)
        if abs(current.rejection_rate - p) > margin:
            current.departs = True
            current.why = f"rejection rate {current.rejection_rate:.1%} vs {p:.1%} in {previous.api_version}"
            continue
        before, after = _mix(previous.codes), _mix(current.codes)
        distance = sum(abs(before.get(c, 0) - after.get(c, 0)) for c in set(before) | set(after)) / 2
        if distance > MIX_MARGIN:
            current.departs = True
            current.why = f"code mix differs from {previous.api_version} (distance {distance:.2f})"
    return ordered

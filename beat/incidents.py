"""Incidents: one per rule and label set, pending -> firing -> resolved, one notification per transition.

`step` is the whole decision, pure: the open incidents, what holds now, the clock and the silences in; the
open incidents after, the notifications to send and the transitions for the history out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from beat.alert_config import Severity
from beat.alert_rules import Finding, Labels

State = Literal["pending", "firing", "resolved"]
EventType = Literal["alert.firing", "alert.resolved"]


def incident_key(rule: str, labels: Labels) -> str:
    """The identity of an incident: its rule and label set."""
    return rule + "|" + json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Incident:
    """A condition that holds (pending until it has held `for_s`, then firing)."""

    id: str
    rule: str
    labels: Labels
    severity: Severity
    state: State
    since: float
    value: float
    summary: str
    fired_at: float | None = None
    last_sent_at: float | None = None
    sends: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        out = asdict(self)
        out["labels"] = dict(self.labels)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Incident:
        """Back from the stored form."""
        return cls(**{**raw, "labels": tuple(sorted(dict(raw["labels"]).items()))})


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to every channel: an incident fired (again, after `repeat_after_s`) or resolved."""

    type: EventType
    incident: Incident
    at: float
    resolved_at: float | None = None

    @property
    def message_id(self) -> str:
        """Stable across retries and evaluators (receivers deduplicate on it): incident, transition, send."""
        suffix = "resolved" if self.type == "alert.resolved" else f"firing.{self.incident.sends}"
        return f"{self.incident.id}.{suffix}"

    def body(self) -> dict[str, Any]:
        """The JSON body every channel renders (the webhook sends it as is)."""
        incident = self.incident
        return {
            "type": self.type,
            "timestamp": _iso(self.at),
            "data": {
                "id": incident.id,
                "rule": incident.rule,
                "severity": incident.severity,
                "summary": incident.summary,
                "labels": dict(incident.labels),
                "value": incident.value,
                "started_at": _iso(incident.fired_at),
                "resolved_at": _iso(self.resolved_at),
            },
        }

    def text(self) -> str:
        """One line for Slack and email."""
        what = "RESOLVED" if self.type == "alert.resolved" else self.incident.severity.upper()
        labels = ", ".join(f"{k}={v}" for k, v in self.incident.labels)
        return f"[{what}] {self.incident.rule}{f' ({labels})' if labels else ''}: {self.incident.summary}"


@dataclass(frozen=True, slots=True)
class Transition:
    """A line of the history: an incident entered a state."""

    incident_id: str
    rule: str
    labels: Labels
    state: State
    at: float
    severity: Severity
    summary: str
    value: float


@dataclass
class Step:
    """What one evaluation decided."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)


def silenced(silences: Mapping[str, float], rule: str, now: float) -> bool:
    """True while a silence of the rule lasts (`silences`: rule -> until, epoch seconds)."""
    return silences.get(rule, 0.0) > now


def _new_id(rule: str, labels: Labels, since: float) -> str:
    digest = hashlib.sha256(f"{incident_key(rule, labels)}@{since!r}".encode()).hexdigest()
    return f"inc_{digest[:20]}"


def _transition(incident: Incident, state: State, at: float) -> Transition:
    return Transition(
        incident.id, incident.rule, incident.labels, state, at, incident.severity, incident.summary, incident.value
    )


def step(
    open_incidents: Mapping[str, Incident],
    findings: Iterable[Finding],
    now: float,
    repeat_after_s: float,
    silences: Mapping[str, float],
) -> Step:
    """Advance every incident by one evaluation at `now`."""
    out = Step()
    held = {incident_key(f.rule, f.labels): f for f in findings}
    for key, found in held.items():
        before = open_incidents.get(key)
        if before is None:
            before = Incident(
                _new_id(found.rule, found.labels, now),
                found.rule,
                found.labels,
                found.severity,
                "pending",
                now,
                found.value,
                found.summary,
            )
            out.transitions.append(_transition(before, "pending", now))
        incident = replace(before, value=found.value, summary=found.summary, severity=found.severity)
        if incident.state == "pending" and now - incident.since >= found.for_s:
            incident = replace(incident, state="firing", fired_at=now)
            out.transitions.append(_transition(incident, "firing", now))
        if incident.state == "firing" and not silenced(silences, incident.rule, now):
            first = incident.sends == 0
            due = (
                repeat_after_s > 0
                and incident.last_sent_at is not None
                and now - incident.last_sent_at >= repeat_after_s
            )
            if first or due:
                incident = replace(incident, sends=incident.sends + 1, last_sent_at=now)
                out.notifications.append(Notification("alert.firing", incident, now))
        out.incidents[key] = incident
    for key, incident in open_incidents.items():
        if key in held or incident.state != "firing":
            continue  # a pending incident whose condition went away never fired: it leaves no notification
        out.transitions.append(_transition(incident, "resolved", now))
        if incident.sends:  # every firing sent is answered by a resolved, silence or not
            out.notifications.append(Notification("alert.resolved", incident, now, resolved_at=now))
    return out

"""The alert rules: pure functions of sampled metrics (their settings: beat/alert_config.py).

A sample is what the evaluator measured at one instant: metric name -> {labels: value}, labels being a sorted
tuple of (name, value) pairs. A rule turns the recent samples into the label sets where its condition holds now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from beat.alert_config import BUILT_IN, AlertsConfig, CustomRule, RuleConfig, Severity

Labels = tuple[tuple[str, str], ...]
Sample = Mapping[str, Mapping[Labels, float]]
History = Sequence[tuple[float, Sample]]
NO_LABELS: Labels = ()


def labels_of(**pairs: str) -> Labels:
    """A label set from keyword arguments, in its canonical (sorted) form."""
    return tuple(sorted(pairs.items()))


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds now for one label set, with the value that made it hold and a sentence."""

    rule: str
    labels: Labels
    value: float
    summary: str
    severity: Severity
    for_s: float


def _series(sample: Sample, metric: str) -> Mapping[Labels, float]:
    return sample.get(metric, {})


def _baseline(history: History, now: float, window_s: float) -> tuple[float, Sample]:
    """The newest sample at least `window_s` old; the oldest kept when none is (the evaluator started recently)."""
    chosen = history[0]
    for at, sample in history:
        if at > now - window_s:
            break
        chosen = (at, sample)
    return chosen


def increase(history: History, metric: str, window_s: float) -> dict[Labels, float]:
    """How much each series of a counter grew over the window (a reset counts from zero, as Prometheus does)."""
    if not history:
        return {}
    now, latest = history[-1]
    before = _series(_baseline(history, now, window_s)[1], metric)
    out = {}
    for labels, value in _series(latest, metric).items():
        past = before.get(labels, 0.0)
        out[labels] = value - past if value >= past else value
    return out


def grouped(values: Mapping[Labels, float], by: str) -> dict[Labels, float]:
    """Values summed by one label (series without it are summed under an empty value)."""
    out: dict[Labels, float] = {}
    for labels, value in values.items():
        key = labels_of(**{by: dict(labels).get(by, "")})
        out[key] = out.get(key, 0.0) + value
    return out


def _only(values: Mapping[Labels, float], **match: str) -> dict[Labels, float]:
    return {k: v for k, v in values.items() if all(dict(k).get(n) == m for n, m in match.items())}


RuleFn = Callable[[History, RuleConfig], dict[Labels, tuple[float, str]]]


def _latest(history: History, metric: str) -> Mapping[Labels, float]:
    return _series(history[-1][1], metric) if history else {}


def queue_without_worker(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
    """A queue holds messages and no worker consumes it."""
    if not history or "fleet_queue_consumers" not in history[-1][1]:
        return {}  # the workers could not be asked: not knowing is no evidence that none consumes
    depths, consumers = _latest(history, "celery_queue_length"), _latest(history, "fleet_queue_consumers")
    return {
        labels: (depth, f"queue {dict(labels)['queue']} holds {depth:.0f} messages and no worker consumes it")
        for labels, depth in depths.items()
        if depth > 0 and consumers.get(labels, 0) == 0
    }


def oldest_message_age(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
    """The oldest waiting message of a queue was published more than `threshold` seconds ago."""
    return {
        labels: (age, f"the oldest message of queue {dict(labels)['queue']} has waited {age:.0f} s")
        for labels, age in _latest(history, "fleet_queue_oldest_age_seconds").items()
        if age > rule.threshold
    }


def queue_growing(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
    """A queue's depth rose by more than `threshold` messages over `window_s`."""
    if not history:
        return {}
    now = history[-1][0]
    before = _series(_baseline(history, now, rule.window_s)[1], "celery_queue_length")
    out = {}
    for labels, depth in _latest(history, "celery_queue_length").items():
        grew = depth - before.get(labels, depth)
        if grew > rule.threshold:
            out[labels] = (grew, f"queue {dict(labels)['queue']} grew by {grew:.0f} messages in {rule.window_s:.0f} s")
    return out


def _ratio(
    bad: Mapping[Labels, float], total: Mapping[Labels, float], rule: RuleConfig
) -> dict[Labels, tuple[float, float]]:
    return {
        labels: (bad.get(labels, 0.0) / count, count)
        for labels, count in total.items()
        if count >= max(rule.min_count, 1) and bad.get(labels, 0.0) / count > rule.threshold
    }


def task_error_rate(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
    """More than `threshold` of a queue's tasks failed over `window_s` (at least `min_count` tasks)."""
    failed = grouped(increase(history, "celery_task_failed_total", rule.window_s), "queue")
    succeeded = grouped(increase(history, "celery_task_succeeded_total", rule.window_s), "queue")
    total = {k: failed.get(k, 0.0) + succeeded.get(k, 0.0) for k in {*failed, *succeeded}}
    return {
        labels: (
            share,
            f"{share:.0%} of {count:.0f} tasks on queue {dict(labels)['queue']} failed in the last "
            f"{rule.window_s:.0f} s",
        )
        for labels, (share, count) in _ratio(failed, total, rule).items()
    }


def ledger_rejection_rate(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
    """More than `threshold` of ledger events were rejected over `window_s` (at least `min_count` events)."""
    events = increase(history, "ledger_events_total", rule.window_s)
    total = {NO_LABELS: float(sum(events.values()))}
    rejected = {NO_LABELS: float(sum(_only(events, status="rejected").values()))}
    return {
        labels: (share, f"{share:.0%} of {count:.0f} ledger events were rejected in the last {rule.window_s:.0f} s")
        for labels, (share, count) in _ratio(rejected, total, rule).items()
    }


def _recent(metric: str, what: str) -> RuleFn:
    def rule_fn(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
        return {
            labels: (
                count,
                f"{count:.0f} {what} in the last {rule.window_s:.0f} s" + "".join(f", {k} {v}" for k, v in labels),
            )
            for labels, count in _latest(history, metric).items()
            if count > rule.threshold
        }

    rule_fn.__doc__ = f"More than `threshold` {what} in the last `window_s`."
    return rule_fn


def _gauge_above(metric: str, what: str, unit: str) -> RuleFn:
    def rule_fn(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
        return {
            labels: (
                value,
                f"{what} is {value:.2f}{unit} (threshold {rule.threshold:g}{unit})"
                + "".join(f", {k} {v}" for k, v in labels),
            )
            for labels, value in _latest(history, metric).items()
            if value > rule.threshold
        }

    rule_fn.__doc__ = f"{what} above `threshold`."
    return rule_fn


def report_missing(history: History, rule: RuleConfig) -> dict[Labels, tuple[float, str]]:
    """Today's report time (plus its grace period) has passed and no report exists."""
    return {
        labels: (1.0, "today's status report was not made at its time")
        for labels, value in _latest(history, "fleet_report_missing").items()
        if value > 0
    }


RULES: dict[str, RuleFn] = {
    "queue_without_worker": queue_without_worker,
    "oldest_message_age": oldest_message_age,
    "queue_growing": queue_growing,
    "task_error_rate": task_error_rate,
    "dead_letters": _recent("fleet_dead_letters_recent", "messages refused (dead letters)"),
    "ledger_anomaly": _recent("fleet_ledger_anomalies_recent", "ledger anomalies detected"),
    "ledger_rejection_rate": ledger_rejection_rate,
    "report_missing": report_missing,
    "broker_latency": _gauge_above("fleet_broker_latency_seconds", "broker round trip", " s"),
    "database_latency": _gauge_above("fleet_database_latency_seconds", "database round trip", " s"),
    "worker_memory": _gauge_above("fleet_memory_used_percent", "memory used of the limit", "%"),
}
assert set(RULES) == set(BUILT_IN)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def custom(history: History, rule: CustomRule) -> dict[Labels, tuple[float, str]]:
    """The series of a custom rule's metric (matching its labels) whose value or rate passes its threshold."""
    if rule.rate_over_s is not None:
        if len(history) < 2:
            return {}
        since, _sample = _baseline(history, history[-1][0], rule.rate_over_s)
        span = max(history[-1][0] - since, 1e-9)
        values = {k: v / span for k, v in increase(history, rule.metric, rule.rate_over_s).items()}
    else:
        values = dict(_latest(history, rule.metric))
    compare = _OPS[rule.op]
    out = {}
    for labels, value in _only(values, **rule.labels).items():
        if compare(value, rule.threshold):
            text = rule.summary or f"{rule.metric} is {value:g} ({rule.op} {rule.threshold:g})"
            out[labels] = (value, text)
    return out


def evaluate(history: History, config: AlertsConfig) -> list[Finding]:
    """Every condition that holds at the newest sample, built-in rules first, then the custom ones."""
    found = []
    for name, rule_fn in RULES.items():
        rule = config.rule(name)
        if not rule.enabled:
            continue
        for labels, (value, summary) in sorted(rule_fn(history, rule).items()):
            found.append(Finding(name, labels, value, summary, rule.severity, rule.for_s))
    for extra in config.custom:
        for labels, (value, summary) in sorted(custom(history, extra).items()):
            found.append(Finding(extra.name, labels, value, summary, extra.severity, extra.for_s))
    return found

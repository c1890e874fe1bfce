"""Alert rules and incidents, pure: what fires, when, and how many notifications an operator receives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beat.alert_config import AlertsConfig, alerts_config
from beat.alert_rules import Finding, evaluate, increase, labels_of
from beat.errors import ReportConfigError
from beat.incidents import Incident, step

LEDGER = labels_of(queue="ledger")


def _finding(for_s: float = 10.0, rule: str = "queue_without_worker", labels: tuple = LEDGER) -> Finding:
    return Finding(rule, labels, 3.0, "queue ledger holds 3 messages and no worker consumes it", "critical", for_s)


def test_a_condition_fires_only_after_it_held_for_s_and_resolves_once() -> None:
    # Given a condition that holds at 0, 5 and 10 s with for_s 10, then goes away
    incidents: dict[str, Incident] = {}
    sent = []
    for now, holds in ((0, True), (5, True), (10, True), (15, True), (20, False), (25, False)):
        result = step(incidents, [_finding()] if holds else [], now, 3600, {})
        incidents = result.incidents
        sent += [(now, n.type) for n in result.notifications]
    # Then one firing at 10 s and one resolved at 20 s
    assert sent == [(10, "alert.firing"), (20, "alert.resolved")]
    assert incidents == {}


def test_a_condition_gone_before_for_s_never_notifies() -> None:
    first = step({}, [_finding()], 0, 3600, {})
    assert [i.state for i in first.incidents.values()] == ["pending"]
    gone = step(first.incidents, [], 5, 3600, {})
    assert gone.notifications == [] and gone.incidents == {}


def test_a_firing_incident_is_sent_again_after_repeat_after_s_with_a_new_message_id() -> None:
    incidents = step({}, [_finding(for_s=0)], 0, 60, {}).incidents
    ids = []
    for now in (30, 60, 90, 120):
        result = step(incidents, [_finding(for_s=0)], now, 60, {})
        incidents = result.incidents
        ids += [n.message_id for n in result.notifications]
    assert len(ids) == 2 and len(set(ids)) == 2  # at 60 and 120


def test_a_silenced_rule_fires_quietly_and_speaks_when_the_silence_ends() -> None:
    silences = {"queue_without_worker": 50.0}
    result = step({}, [_finding(for_s=0)], 0, 3600, silences)
    assert result.notifications == [] and [t.state for t in result.transitions] == ["pending", "firing"]
    later = step(result.incidents, [_finding(for_s=0)], 60, 3600, silences)
    assert [n.type for n in later.notifications] == ["alert.firing"]


def test_the_webhook_body_has_the_documented_shape() -> None:
    result = step({}, [_finding(for_s=0)], 1_764_930_000, 3600, {})
    body = result.notifications[0].body()
    assert body["type"] == "alert.firing" and body["timestamp"].endswith("Z")
    assert body["data"]["labels"] == {"queue": "ledger"} and body["data"]["severity"] == "critical"
    assert body["data"]["started_at"] == body["timestamp"] and body["data"]["resolved_at"] is None


@settings(max_examples=300, deadline=None)
@given(
    held=st.lists(st.booleans(), min_size=1, max_size=40),
    for_s=st.sampled_from([0.0, 5.0, 12.0, 30.0]),
    repeat=st.sampled_from([0.0, 20.0, 3600.0]),
    silenced_until=st.sampled_from([0.0, 50.0, 1e9]),
)
def test_notifications_pair_up_whatever_the_sequence(
    held: list[bool], for_s: float, repeat: float, silenced_until: float
) -> None:
    # Given any sequence of evaluations 5 s apart where the condition holds or not
    incidents: dict[str, Incident] = {}
    types: list[str] = []
    since: float | None = None
    for tick, holds in enumerate(held):
        now = tick * 5.0
        since = (since if since is not None else now) if holds else None
        result = step(
            incidents, [_finding(for_s)] if holds else [], now, repeat, {"queue_without_worker": silenced_until}
        )
        incidents = result.incidents
        for n in result.notifications:
            types.append(n.type)
            # Then nothing fires before the condition has held for for_s
            if n.type == "alert.firing":
                assert since is not None and now - since >= for_s
    # Then every resolved follows a firing, never two resolved in a row, and at most one incident is open
    opened = False
    for kind in types:
        if kind == "alert.resolved":
            assert opened
            opened = False
        else:
            opened = True
    assert len(incidents) <= 1


def test_error_rate_counts_only_what_happened_in_the_window() -> None:
    config = AlertsConfig.model_validate({"rules": {"task_error_rate": {"window_s": 60, "min_count": 5}}})
    before = {"celery_task_failed_total": {labels_of(name="x", queue="ledger"): 100.0}}
    after = {
        "celery_task_failed_total": {labels_of(name="x", queue="ledger"): 108.0},
        "celery_task_succeeded_total": {labels_of(name="y", queue="ledger"): 2.0},
    }
    found = [f for f in evaluate([(0.0, before), (30.0, after)], config) if f.rule == "task_error_rate"]
    assert [(f.labels, round(f.value, 2)) for f in found] == [(LEDGER, 0.8)]


def test_a_counter_reset_counts_from_zero() -> None:
    history = [(0.0, {"c_total": {(): 50.0}}), (10.0, {"c_total": {(): 4.0}})]
    assert increase(history, "c_total", 60) == {(): 4.0}


def test_a_custom_rule_watches_any_exported_metric_as_a_rate() -> None:
    config = alerts_config(
        {
            "custom": [
                {
                    "name": "busy_api",
                    "metric": "requests_total",
                    "rate_over_s": 10,
                    "threshold": 1.0,
                    "labels": {"route": "/a"},
                }
            ]
        }
    )
    history = [
        (0.0, {"requests_total": {labels_of(route="/a"): 0.0, labels_of(route="/b"): 0.0}}),
        (10.0, {"requests_total": {labels_of(route="/a"): 50.0, labels_of(route="/b"): 50.0}}),
    ]
    assert [(f.rule, f.labels) for f in evaluate(history, config) if f.rule == "busy_api"] == [
        ("busy_api", labels_of(route="/a"))
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"evaluate_every_s": 1}, "alerts.evaluate_every_s: Input should be greater than or equal to 5"),
        ({"rules": {"nope": {}}}, "alerts.rules: Value error, unknown rules ['nope']"),
        ({"webhooks": [{"url": "https://x", "secret": "s3cret"}]}, "alerts.webhooks.0.secret: Value error, must be"),
    ],
)
def test_a_bad_alerts_section_is_one_clear_error(raw: dict, message: str) -> None:
    with pytest.raises(ReportConfigError, match="FLEET_CONFIG: " + message.replace("[", r"\[").replace("]", r"\]")):
        alerts_config(raw)


def test_the_report_and_the_briefing_list_the_periods_incidents() -> None:
    from dataclasses import replace

    from beat.analyzer import load_catalogue
    from beat.report import build_briefing, build_report
    from tests.unit.test_report_logic import _inputs

    incident = {"rule": "queue_without_worker", "labels": {"queue": "ledger"}, "severity": "critical",
                "summary": "queue ledger holds 3 messages and no worker consumes it",
                "fired_at": "2026-11-21T10:05+00:00", "resolved_at": None}  # fmt: skip
    inputs = replace(_inputs("en"), incidents=[incident])
    report = build_report(inputs, load_catalogue())
    assert "## Alerts" in report.markdown and "`queue_without_worker` (queue=ledger)" in report.markdown
    assert "still firing" in report.markdown and report.figures["incidents"] == [incident]
    briefing, data = build_briefing(inputs, load_catalogue())
    assert "queue ledger holds 3 messages" in briefing and data["incidents"] == [incident]
    quiet = build_report(_inputs("ko"), load_catalogue())
    assert "## 경보" in quiet.markdown and "발생한 경보가 없습니다" in quiet.markdown


def test_a_queue_is_not_said_to_have_no_worker_when_the_workers_could_not_be_asked() -> None:
    config = AlertsConfig()
    depths = {"celery_queue_length": {LEDGER: 3.0}}
    assert [f for f in evaluate([(0.0, depths)], config) if f.rule == "queue_without_worker"] == []
    asked = {**depths, "fleet_queue_consumers": {LEDGER: 0.0}}
    assert [f.labels for f in evaluate([(0.0, asked)], config) if f.rule == "queue_without_worker"] == [LEDGER]

"""Pure report logic: statistics, thresholds, component roll-up, issue patterns, Markdown in EN and KO."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from beat.aggregates import (
    BUCKETS,
    HostSample,
    LogEvent,
    MinuteAggregate,
    bucket_index,
    empty_buckets,
    quantile_from_buckets,
)
from beat.analyzer import Evidence, analyze, load_catalogue
from beat.components import Component, Health, Probe, Status, assess, rollup
from beat.config import Threshold, reports_config
from beat.errors import PatternError
from beat.report import ReportInputs, build_briefing, build_report
from beat.summary import compare, describe, summarise
from beat.thresholds import Level, classify

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
HEALTHY = Probe(broker_ms=0.5, database_ms=1.0, workers=("w1@host",))


def _task(
    minute: int, count: int, failures: int = 0, runtime: float = 0.01, name: str = "fleet.ping"
) -> MinuteAggregate:
    buckets = empty_buckets()
    buckets[bucket_index(runtime)] = count
    return MinuteAggregate(
        minute=T0 + timedelta(minutes=minute),
        kind="task",
        name=name,
        group="ledger",
        count=count,
        failures=failures,
        runtime_sum=runtime * count,
        runtime_max=runtime,
        wait_sum=0.1 * count,
        wait_count=count,
        wait_max=0.1,
        buckets=buckets,
    )


def test_describe_gives_mean_min_max_stdev_and_nearest_rank_p95() -> None:
    stat = describe(float(v) for v in range(1, 101))
    assert stat is not None
    assert (stat.mean, stat.min, stat.max, stat.p95, stat.total) == (50.5, 1.0, 100.0, 95.0, 5050.0)
    assert stat.stdev == pytest.approx(28.866, abs=1e-3)
    assert describe([]) is None


def test_quantiles_interpolate_within_the_histogram_bucket() -> None:
    buckets = empty_buckets()
    buckets[bucket_index(0.004)] = 95
    buckets[bucket_index(2.0)] = 5
    assert quantile_from_buckets(buckets, 0.95) == BUCKETS[0]
    # rank 99 is the 4th of 5 in (1.0, 2.5]: 1.0 + 1.5 * 4/5, not the bucket's bound
    assert quantile_from_buckets(buckets, 0.99) == pytest.approx(2.2)
    assert quantile_from_buckets(buckets, 0.99, maximum=2.0) == 2.0


def test_a_minute_with_one_task_has_that_tasks_time_as_p95_and_an_empty_one_has_none() -> None:
    # Given one collect_metrics of 1.2 s in a minute (its bucket's bound is 2.5 s)
    one = _task(0, 1, runtime=1.2)
    # Then its p95 is 1.2 s, and a histogram without executions has no p95 at all
    assert quantile_from_buckets(one.buckets, 0.95, one.runtime_max) == pytest.approx(1.2)
    assert quantile_from_buckets(empty_buckets(), 0.95) is None
    summary = summarise([one], [], T0, T0 + timedelta(hours=1))
    assert summary.series["runtime_p95_s"] == [pytest.approx(1.2)]
    assert summary.per_task[0].runtime_p95_s == pytest.approx(1.2)


def test_summarise_counts_tasks_and_failures_per_minute_and_per_task() -> None:
    rows = [_task(0, 100, failures=2), _task(1, 50), _task(1, 10, failures=10, name="fleet.fail")]
    summary = summarise(rows, [], T0, T0 + timedelta(hours=1))
    assert (summary.tasks, summary.failures) == (160, 12)
    assert summary.series["throughput"] == [100, 60]
    assert summary.signals["failure_rate_pct"].max == pytest.approx(100 * 10 / 60)
    assert [(r.name, r.count, r.failures) for r in summary.per_task] == [("fleet.ping", 150, 2), ("fleet.fail", 10, 10)]
    assert summary.per_task[0].wait_mean_s == pytest.approx(0.1)


def test_rows_outside_the_period_are_left_out() -> None:
    summary = summarise([_task(0, 5), _task(90, 7)], [], T0, T0 + timedelta(hours=1))
    assert summary.tasks == 5


def test_comparison_against_the_previous_day_and_the_baseline() -> None:
    summary = summarise([_task(0, 120)], [], T0, T0 + timedelta(hours=1))
    result = compare(summary, {"throughput": 100.0}, [{"throughput": 80.0}, {"throughput": 120.0}])
    assert result["throughput"]["vs_previous_pct"] == pytest.approx(20.0)
    assert result["throughput"]["vs_baseline_pct"] == pytest.approx(20.0)
    assert compare(summary, None, [])["throughput"]["vs_baseline_pct"] is None


@pytest.mark.parametrize(
    ("value", "threshold", "level"),
    [
        (0.5, Threshold(caution=1, warning=5), Level.NORMAL),
        (1.0, Threshold(caution=1, warning=5), Level.CAUTION),
        (7.0, Threshold(caution=1, warning=5), Level.WARNING),
        (3.0, Threshold(caution=2, warning=1, direction="below"), Level.NORMAL),
        (2.0, Threshold(caution=2, warning=1, direction="below"), Level.CAUTION),
        (0.0, Threshold(caution=2, warning=1, direction="below"), Level.WARNING),
    ],
)
def test_thresholds_classify_normal_caution_warning(value: float, threshold: Threshold, level: Level) -> None:
    assert classify(value, threshold) is level


def test_configured_thresholds_override_the_defaults() -> None:
    config = reports_config({"thresholds": {"failure_rate_pct": {"caution": 50, "warning": 90, "stat": "mean"}}})
    assert config.all_thresholds()["failure_rate_pct"].caution == 50
    assert "cpu_percent" in config.all_thresholds()


@pytest.mark.parametrize(
    ("statuses", "health"),
    [
        ({}, Health.OK),
        ({"flower": Status.LIMITED}, Health.OK),
        ({"beat": Status.WARNING}, Health.WARNING),
        ({"api": Status.ERROR}, Health.ERROR),
        ({"workers": Status.ERROR, "api": Status.WARNING}, Health.CRITICAL),
        ({"broker": Status.ERROR}, Health.CRITICAL),
    ],
)
def test_component_states_roll_up_to_the_fleet_health(statuses: dict[str, Status], health: Health) -> None:
    names = ("broker", "database", "workers", "beat", "flower", "api")
    assert rollup([Component(n, statuses.get(n, Status.OK), "") for n in names]) is health


def test_a_probe_with_no_worker_makes_workers_error_and_unconfigured_urls_limited() -> None:
    components = {c.name: c for c in assess(Probe(broker_ms=1, database_ms=None, workers=()), T0)}
    assert components["workers"].status is Status.ERROR
    assert components["database"].status is Status.ERROR
    assert components["flower"].status is Status.LIMITED
    assert components["beat"].status is Status.LIMITED


def _evidence(**changes: object) -> Evidence:
    base = {"signals": {}, "levels": {}, "components": assess(HEALTHY, T0), "logs": ()}
    return Evidence(**{**base, **changes})  # type: ignore[arg-type]


def test_the_shipped_catalogue_finds_nothing_on_a_healthy_fleet() -> None:
    assert analyze(load_catalogue(), _evidence()) == []


def test_a_stopped_worker_becomes_a_high_issue_with_actions_in_korean_too() -> None:
    components = assess(Probe(broker_ms=1, database_ms=1, workers=()), T0)
    issues = analyze(load_catalogue(), _evidence(components=components), language="ko")
    assert issues[0].id == "workers-offline" and issues[0].priority == "HIGH"
    assert issues[0].title == "온라인 워커 없음" and issues[0].actions


def test_an_error_burst_in_the_logs_matches_by_metric_and_by_regex() -> None:
    logs = tuple(LogEvent(T0, "ERROR", "fleet", "Error 111 connecting to redis: Connection refused") for _ in range(5))
    burst = describe([0.0, 12.0])
    issues = analyze(load_catalogue(), _evidence(signals={"error_lines": burst}, logs=logs))
    assert {"error-burst", "redis-connection-errors"} <= {i.id for i in issues}


def test_a_pattern_added_in_config_is_applied_without_code() -> None:
    extra = {
        "id": "ledger-rejections",
        "title": "Ledger events are rejected",
        "priority": "LOW",
        "category": "ledger",
        "components": ["workers"],
        "when": [{"log": {"regex": "rejected: exceeds_credits", "min_count": 2}}],
        "actions": ["Check the producer's credit limits"],
        "minutes": 5,
    }
    logs = tuple(LogEvent(T0, "WARNING", "fleet.ledger", "evt-1 rejected: exceeds_credits") for _ in range(2))
    issues = analyze(load_catalogue([extra]), _evidence(logs=logs))
    assert [(i.id, i.actions, i.minutes) for i in issues] == [
        ("ledger-rejections", ["Check the producer's credit limits"], 5)
    ]


def test_a_pattern_with_a_bad_regex_is_refused_by_id() -> None:
    bad = {
        "id": "broken",
        "title": "x",
        "priority": "LOW",
        "category": "x",
        "when": [{"log": {"regex": "("}}],
        "actions": ["x"],
    }
    with pytest.raises(PatternError, match="broken"):
        load_catalogue([bad])


def _inputs(language: str, probe: Probe = HEALTHY) -> ReportInputs:
    rows = [_task(m, 100, failures=10 if m == 3 else 0) for m in range(10)]
    hosts = [
        HostSample(minute=T0 + timedelta(minutes=m), cpu_percent=20, memory_percent=40, error_lines=0)
        for m in range(10)
    ]
    return ReportInputs(
        day=date(2026, 11, 21),
        start=T0,
        end=T0 + timedelta(hours=1),
        now=T0 + timedelta(hours=1),
        config=reports_config({}),
        probe=probe,
        aggregates=rows,
        hosts=hosts,
        language=language,
    )


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["# Fleet status report: 2026-11-21", "## Issues", "caution"]),
        ("ko", ["# 플릿 상태 보고서: 2026-11-21", "## 문제", "주의"]),
    ],
)
def test_the_report_renders_in_english_and_korean(language: str, words: list[str]) -> None:
    report = build_report(_inputs(language), load_catalogue(), chart="2026-11-21.png")
    for word in words:
        assert word in report.markdown
    assert report.figures["summary"]["tasks"] == 1000 and report.figures["summary"]["failures"] == 10
    assert report.figures["levels"]["failure_rate_pct"] == "caution"
    assert "(2026-11-21.png)" in report.markdown


def test_missing_ledger_and_agent_tables_show_no_data() -> None:
    report = build_report(_inputs("en"), load_catalogue())
    assert "## Ledger quick runs\nno data" in report.markdown
    assert "## Agent workflows\nno data" in report.markdown


def test_the_briefing_names_the_health_and_the_first_action() -> None:
    markdown, data = build_briefing(_inputs("en", Probe(broker_ms=1, database_ms=1, workers=())), load_catalogue())
    assert data["health"] == "CRITICAL"
    assert "**CRITICAL**" in markdown and "Start a worker" in markdown


def test_messages_given_back_to_their_queues_are_listed_per_queue_and_reason() -> None:
    from dataclasses import replace

    quiet = build_report(_inputs("en"), load_catalogue())
    restored = build_report(replace(_inputs("en"), restored={"ledger (worker_lost)": 3}), load_catalogue())
    assert "## Messages given back to their queues\nnone: no worker was lost" in quiet.markdown
    assert "## Messages given back to their queues\n- ledger (worker_lost): 3" in restored.markdown
    assert restored.figures["restored"] == {"ledger (worker_lost)": 3}

"""The report's health, its issues and its next steps always agree, whatever the evidence (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beat.aggregates import BUCKETS, KINDS, HostSample, LogEvent, MinuteAggregate, empty_buckets
from beat.analyzer import load_catalogue
from beat.components import Health, Probe
from beat.config import DEFAULT_THRESHOLDS, Threshold, reports_config
from beat.i18n import words
from beat.report import URGENT, ReportInputs, build_briefing, build_report

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=2)
PATTERNS = load_catalogue()
SIGNALS = [*DEFAULT_THRESHOLDS, "net_kbps", "fleet_rss_mb", "log_errors_per_min", "workers", "not_a_signal"]
MESSAGES = ["task failed", "connection refused", "Error while reading from socket", "disk full", ""]


@st.composite
def aggregates(draw: st.DrawFn) -> MinuteAggregate:
    count = draw(st.integers(1, 500))
    buckets = empty_buckets()
    for _ in range(draw(st.integers(1, 3))):
        buckets[draw(st.integers(0, len(BUCKETS)))] += count
    runtime_max = draw(st.floats(0.0, 400.0))
    return MinuteAggregate(
        minute=START + timedelta(minutes=draw(st.integers(0, 119))),
        kind=draw(st.sampled_from(KINDS)),
        name=draw(st.sampled_from(["fleet.ping", "ledger.quick_run", "GET /metrics", "SELECT"])),
        group="ledger",
        count=count,
        failures=draw(st.integers(0, count)),
        runtime_sum=runtime_max * count / 2,
        runtime_max=runtime_max,
        wait_sum=draw(st.floats(0, 100)) * count,
        wait_count=count,
        buckets=buckets,
    )


hosts = st.builds(
    HostSample,
    minute=st.integers(0, 119).map(lambda m: START + timedelta(minutes=m)),
    cpu_percent=st.floats(0, 100),
    memory_percent=st.floats(0, 100),
    error_lines=st.integers(0, 30),
    warning_lines=st.integers(0, 30),
    queue_depth=st.dictionaries(st.sampled_from(["agents", "ledger"]), st.integers(0, 3000), max_size=2),
    workers=st.integers(0, 3),
)
logs = st.builds(
    LogEvent,
    at=st.integers(0, 7199).map(lambda s: START + timedelta(seconds=s)),
    level=st.sampled_from(["WARNING", "ERROR", "CRITICAL"]),
    logger=st.just("fleet.worker"),
    message=st.sampled_from(MESSAGES),
)
probes = st.builds(
    Probe,
    broker_ms=st.none() | st.floats(0, 300),
    database_ms=st.none() | st.floats(0, 1000),
    workers=st.lists(st.sampled_from(["w1@h", "w2@h", "w3@h"]), unique=True).map(tuple),
    expected_workers=st.integers(0, 3),
    beat_last_seen=st.none() | st.integers(0, 30).map(lambda m: NOW - timedelta(minutes=m)),
    flower_ok=st.none() | st.booleans(),
    api_ok=st.none() | st.booleans(),
)


@st.composite
def thresholds(draw: st.DrawFn) -> dict[str, dict[str, object]]:
    chosen = draw(st.dictionaries(st.sampled_from(SIGNALS), st.tuples(st.floats(0, 100), st.floats(0, 100))))
    out: dict[str, dict[str, object]] = {}
    for name, (a, b) in chosen.items():
        stat = draw(st.sampled_from(["mean", "max", "p95", "min", "total"]))
        out[name] = Threshold(caution=min(a, b), warning=max(a, b), stat=stat).model_dump()  # type: ignore[arg-type]
    return out


@st.composite
def report_inputs(draw: st.DrawFn) -> ReportInputs:
    return ReportInputs(
        day=date(2026, 11, 21),
        start=START,
        end=NOW,
        now=NOW,
        config=reports_config({"thresholds": draw(thresholds())}),
        probe=draw(probes),
        aggregates=draw(st.lists(aggregates(), max_size=12)),
        hosts=draw(st.lists(hosts, max_size=6)),
        logs=draw(st.lists(logs, max_size=15)),
        offline=draw(st.booleans()),
        language=draw(st.sampled_from(["en", "ko"])),
    )


def _section(markdown: str, title: str) -> list[str]:
    """The non-empty lines under `## title`, up to the next section."""
    lines = markdown.splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def _assert_agree(health: str, issues: list[dict[str, object]], markdown: str, language: str) -> None:
    w = words(language)
    steps = _section(markdown, w["next_steps"])
    priorities = {str(issue["priority"]) for issue in issues}
    if health == Health.OK.value:
        # OK never comes with an urgent issue
        assert not priorities & URGENT, (health, priorities)
    else:
        # a health worse than OK is always explained by an issue with a next step
        assert issues, health
        assert w["no_issues"] not in markdown and w["nothing_to_do"] not in markdown
    if health == Health.CRITICAL.value:
        assert "HIGH" in priorities
    if issues:
        assert len(steps) == len(issues) and all(step.startswith(f"{n}. ") for n, step in enumerate(steps, 1))
        assert all(issue["actions"] for issue in issues)
    else:
        assert steps == [w["nothing_to_do"]] and w["no_issues"] in markdown


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_inputs())
def test_the_report_health_issues_and_next_steps_always_agree(inputs: ReportInputs) -> None:
    report = build_report(inputs, PATTERNS)
    _assert_agree(report.health.value, report.figures["issues"], report.markdown, inputs.language)
    assert report.figures["health"] == report.health.value


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_inputs())
def test_the_briefing_health_issues_and_next_steps_always_agree(inputs: ReportInputs) -> None:
    markdown, data = build_briefing(inputs, PATTERNS)
    _assert_agree(data["health"], data["issues"], markdown, inputs.language)


def test_a_beat_that_stopped_sampling_is_a_warning_with_an_issue_and_a_step() -> None:
    # Given a healthy fleet whose beat last sampled 20 minutes ago (no shipped pattern looks at beat)
    probe = Probe(broker_ms=1.0, database_ms=1.0, workers=("w1@h",), beat_last_seen=NOW - timedelta(minutes=20))
    inputs = ReportInputs(date(2026, 11, 21), START, NOW, NOW, reports_config({}), probe)
    # When the report is made
    report = build_report(inputs, PATTERNS)
    # Then its WARNING comes with the issue and the action, not "No issues found" and "Nothing to do"
    assert report.health == Health.WARNING
    assert [issue.id for issue in report.issues] == ["component-beat"]
    assert "1. [MEDIUM] Check that one beat runs" in report.markdown
    assert "No issues found" not in report.markdown and "Nothing to do" not in report.markdown

"""Run the report: gather evidence from Redis, SQL and logs, call the pure builder, store and write files."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from beat.analyzer import Pattern, load_catalogue
from beat.chart import render_chart
from beat.config import ReportsConfig, reports_config
from beat.report import Report, ReportInputs, build_briefing, build_report
from beat.schedule import check_report_date, in_offline_window, is_late, missed_report_due, report_period
from worker.alerts import incidents_between
from worker.application import get_app
from worker.db import get_engine
from worker.redis_client import get_redis
from worker.reports import evidence, store
from worker.settings import get_settings
from worker.telemetry import RECORDER, minute_of, muted, request_flush

log = logging.getLogger("fleet.reports")


@dataclass(frozen=True, slots=True)
class Context:
    """Settings the report needs, read once per run."""

    config: ReportsConfig
    patterns: list[Pattern]
    zone: ZoneInfo
    language: str
    report_dir: Path
    log_dir: Path


def context() -> Context:
    """The reports settings, validated (ReportConfigError names a bad key)."""
    settings = get_settings()
    config = reports_config(settings.section("reports"))
    return Context(
        config=config,
        patterns=load_catalogue(config.patterns),
        zone=ZoneInfo(settings.timezone),
        language=settings.language,
        report_dir=settings.report_dir,
        log_dir=settings.log_dir,
    )


def collect(now: datetime | None = None, ctx: Context | None = None) -> dict[str, Any]:
    """Move finished minutes from Redis into SQL and store this minute's host sample (skipped offline)."""
    ctx = ctx or context()
    now = now or datetime.now(UTC)
    if in_offline_window(now.astimezone(ctx.zone).time(), ctx.config.window):
        return {"skipped": "offline window"}
    RECORDER.flush()
    redis_client = get_redis()
    moved = store.move_telemetry(redis_client, before=minute_of(now.timestamp()))
    minute = datetime.fromtimestamp(minute_of(now.timestamp()), UTC)
    sample = evidence.sample_host(redis_client, ctx.log_dir, get_app(), minute)
    store.save_host_sample(sample)
    return {"minute": minute.isoformat(), "rows_moved": moved, "error_lines": sample.error_lines}


def collect_now(ctx: Context, now: datetime) -> datetime | None:
    """What the running processes hold in memory, written now, and a host sample of this minute.

    Returns when the collector (`reports.collect_metrics`) last sampled before this one: the report's probe
    judges the collector by it, and this sample is not the collector's.
    """
    redis_client = get_redis()
    asked, answered = request_flush(redis_client)
    if answered < asked:
        log.info("%d of %d processes flushed their telemetry in time", answered, asked, extra={"category": "system"})
    last = store.last_sample_at()
    minute = datetime.fromtimestamp(minute_of(now.timestamp()), UTC)
    store.save_host_sample(evidence.sample_host(redis_client, ctx.log_dir, get_app(), minute))
    return last


_UNSET: Any = object()


def _inputs(
    day: date, now: datetime, ctx: Context, late: bool, period_days: float = 1.0, last_sample: Any = _UNSET
) -> ReportInputs:
    now_local = now.astimezone(ctx.zone)
    store.move_telemetry(get_redis())  # everything, the current minute too: rows are additive
    start, end = report_period(day, now_local, ctx.config)
    if period_days != 1.0:
        start = end - timedelta(days=period_days)
    previous, baseline = store.history(day, ctx.config.baseline_days)
    engine = get_engine()
    return ReportInputs(
        day=day,
        start=start.astimezone(UTC),
        end=end.astimezone(UTC) + timedelta(seconds=1),
        now=now,
        config=ctx.config,
        probe=evidence.probe(
            get_app(), get_redis(), ctx.config, store.last_sample_at() if last_sample is _UNSET else last_sample
        ),
        aggregates=store.load_aggregates(start, end + timedelta(seconds=1)),
        hosts=store.load_hosts(start, end + timedelta(seconds=1)),
        logs=evidence.read_log_events(ctx.log_dir, start.astimezone(UTC), end.astimezone(UTC) + timedelta(seconds=1)),
        previous=previous,
        history=baseline,
        ledger=store.ledger_figures(engine, start, end),
        agents=store.agent_figures(engine, start, end),
        restored=_restored(day),
        late=late,
        offline=in_offline_window(now_local.time(), ctx.config.window),
        language=ctx.language,
        incidents=incidents_between(start.astimezone(UTC), end.astimezone(UTC) + timedelta(seconds=1)),
    )


def _restored(day: date) -> dict[str, int]:
    """Messages the fleet's transport gave back on that (UTC) day, per queue and reason (worker/ownership.py)."""
    from worker.ownership import decode, restored_key

    counts = get_redis().hgetall(restored_key(datetime(day.year, day.month, day.day, tzinfo=UTC)))
    out = {}
    for field, value in sorted(counts.items()):
        queue, _, reason = decode(field).partition("\t")
        out[f"{queue} ({reason})"] = int(value)
    return out


def _write_files(report: Report, ctx: Context) -> dict[str, str]:
    folder = ctx.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    day = report.day.isoformat()
    files = {"markdown": str(folder / f"{day}.md"), "latest": str(folder / "latest.md")}
    if report.figures.get("chart"):
        summary = report.figures["summary"]
        period = (datetime.fromisoformat(summary["start"]), datetime.fromisoformat(summary["end"]))
        files["chart"] = str(render_chart(summary["series"], folder / f"{day}.png", f"Fleet {day}", period))
    (folder / f"{day}.md").write_text(report.markdown, encoding="utf-8")
    (folder / "latest.md").write_text(report.markdown, encoding="utf-8")
    (folder / f"{day}.json").write_text(json.dumps(report.figures, ensure_ascii=False, indent=1), encoding="utf-8")
    files["dashboard"] = str(folder / f"{day}.json")
    return files


def generate(
    day: date | None = None, trigger: str = "manual", replace: bool = True, now: datetime | None = None
) -> dict[str, Any]:
    """Make, store and write the report of `day` (today by default); one per date unless `replace`."""
    with muted():  # the report's own SQL is not the fleet's latency
        return _generate(day, trigger, replace, now)


def _generate(day: date | None, trigger: str, replace: bool, now: datetime | None) -> dict[str, Any]:
    ctx = context()
    now = now or datetime.now(UTC)
    now_local = now.astimezone(ctx.zone)
    day = check_report_date(day or now_local.date(), now_local.date())
    if not replace and store.get_report(day) is not None:
        return {"date": day.isoformat(), "stored": False, "reason": "exists"}
    # A report sent because beat found it missed at start is late by definition; a scheduled one past grace too.
    late = trigger == "missed" or (trigger == "schedule" and is_late(now_local, ctx.config))
    # On demand, the report shows now: what workers have not flushed yet and a host sample of this minute.
    last_sample = collect_now(ctx, now) if trigger == "manual" else _UNSET
    inputs = _inputs(day, now, ctx, late, last_sample=last_sample)
    report = build_report(inputs, ctx.patterns, chart=f"{day}.png" if ctx.config.chart else None)
    values = {
        "report_date": day,
        "late": late,
        "trigger": trigger,
        "health": report.health.value,
        "language": ctx.language,
        "markdown": report.markdown,
        "figures": report.figures,
        "files": {},
    }
    if not store.store_report(values, report.figures["issues"], replace=replace):
        return {"date": day.isoformat(), "stored": False, "reason": "exists"}
    files = _write_files(report, ctx)
    log.info(
        "report of %s written: health %s, %d issues",
        day,
        report.health.value,
        len(report.issues),
        extra={"category": "system", "report_date": day.isoformat(), "late": late, "trigger": trigger},
    )
    return {
        "date": day.isoformat(),
        "stored": True,
        "late": late,
        "health": report.health.value,
        "tasks": report.figures["summary"]["tasks"],
        "failures": report.figures["summary"]["failures"],
        "issues": [issue["id"] for issue in report.figures["issues"]],
        "files": files,
    }


def briefing(now: datetime | None = None, hours: float = 1.0) -> tuple[str, dict[str, Any]]:
    """A short briefing of the last `hours`: health, component states, issues and actions."""
    ctx = context()
    now = now or datetime.now(UTC)
    inputs = _inputs(now.astimezone(ctx.zone).date(), now, ctx, late=False, period_days=hours / 24)
    return build_briefing(inputs, ctx.patterns)


def missed_report_check(now: datetime | None = None) -> date | None:
    """Today's date if its report time passed with no report stored (the fleet was down then)."""
    ctx = context()
    now_local = (now or datetime.now(UTC)).astimezone(ctx.zone)
    has_report = store.get_report(now_local.date()) is not None
    return missed_report_due(now_local, has_report, ctx.config, store.first_seen())

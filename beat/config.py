"""The `reports` and `notifications` sections of FLEET_CONFIG, validated at first use."""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from beat.errors import ReportConfigError
from config_sections import validate_section

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    """`"10:00"` as a time; ReportConfigError otherwise."""
    match = _HHMM.match(value.strip())
    if not match:
        raise ValueError(f"must be HH:MM, got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


class Threshold(BaseModel):
    """Where a signal turns caution and warning; `below` for signals where low is bad."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    caution: float
    warning: float
    stat: Literal["mean", "max", "p95", "min", "total"] = "max"
    direction: Literal["above", "below"] = "above"


DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "failure_rate_pct": Threshold(caution=1, warning=5, stat="mean"),
    "runtime_p95_s": Threshold(caution=5, warning=30, stat="max"),
    "queue_wait_s": Threshold(caution=5, warning=60, stat="mean"),
    "queue_depth": Threshold(caution=100, warning=1000, stat="max"),
    "cpu_percent": Threshold(caution=70, warning=90, stat="mean"),
    "memory_percent": Threshold(caution=80, warning=90, stat="max"),
    "error_lines": Threshold(caution=1, warning=10, stat="max"),
    "http_p95_s": Threshold(caution=0.5, warning=2, stat="max"),
    "db_p95_s": Threshold(caution=0.1, warning=1, stat="max"),
}


class ReportsConfig(BaseModel):
    """Every key of the `reports` section; see docs/reports.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    telemetry: bool = True
    flush_interval_s: float = Field(default=5.0, gt=0, le=60)
    flush_every_tasks: int = Field(default=500, ge=1)
    report_time: str = "10:00"
    offline_window: str | None = "02:00-07:00"
    late_grace_minutes: int = Field(default=15, ge=0)
    baseline_days: int = Field(default=7, ge=1, le=60)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    patterns: list[dict[str, Any]] = Field(default_factory=list)
    chart: bool = True
    expected_workers: int = Field(default=1, ge=0)
    flower_url: str | None = None
    api_url: str | None = None

    @field_validator("report_time")
    @classmethod
    def _time_shape(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @field_validator("offline_window")
    @classmethod
    def _window_shape(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError(f"must be HH:MM-HH:MM, got {value!r}")
        parse_hhmm(start)
        parse_hhmm(end)
        return value

    @property
    def report_at(self) -> time:
        """The local time of the daily report."""
        return parse_hhmm(self.report_time)

    @property
    def window(self) -> tuple[time, time] | None:
        """The offline window (start, end) in local time, None when there is none."""
        if not self.offline_window:
            return None
        start, _, end = self.offline_window.partition("-")
        return parse_hhmm(start), parse_hhmm(end)

    def all_thresholds(self) -> dict[str, Threshold]:
        """The defaults overridden by configured thresholds."""
        return {**DEFAULT_THRESHOLDS, **self.thresholds}


class EmailConfig(BaseModel):
    """SMTP delivery of the report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = 25
    sender: str
    recipients: list[str] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_s: float = 10.0


class NotificationsConfig(BaseModel):
    """Every key of the `notifications` section; see docs/reports.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slack_webhook_url: SecretStr | None = None
    email: EmailConfig | None = None
    send: Literal["always", "issues", "never"] = "always"
    timeout_s: float = 10.0


def reports_config(raw: dict[str, Any]) -> ReportsConfig:
    """The `reports` section validated; ReportConfigError names the bad key."""
    return validate_section(ReportsConfig, "reports", raw, ReportConfigError)


def notifications_config(raw: dict[str, Any]) -> NotificationsConfig:
    """The `notifications` section validated; ReportConfigError names the bad key."""
    return validate_section(NotificationsConfig, "notifications", raw, ReportConfigError)

"""The `alerts` section of FLEET_CONFIG: the built-in rules' tuning, custom rules, webhooks; see docs/reports.md."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from beat.errors import ReportConfigError
from config_sections import validate_section

Severity = Literal["warning", "critical"]
Channel = Literal["slack", "email"]


class RuleConfig(BaseModel):
    """How one built-in rule is tuned: `threshold` and `window_s` mean what the rule's table in docs/reports.md says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    for_s: float = Field(default=60.0, ge=0)
    severity: Severity = "warning"
    threshold: float = 0.0
    window_s: float = Field(default=300.0, gt=0)
    min_count: int = Field(default=0, ge=0)


class CustomRule(BaseModel):
    """A rule on any exported metric: its value (or per-second rate over `rate_over_s`) against a threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float
    rate_over_s: float | None = Field(default=None, gt=0)
    for_s: float = Field(default=60.0, ge=0)
    severity: Severity = "warning"
    summary: str = ""


class WebhookTarget(BaseModel):
    """One webhook receiver, signed per Standard Webhooks with its `whsec_` secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    secret: SecretStr
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("whsec_") or len(value.get_secret_value()) < 10:
            raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64")
        return value


# Defaults of the built-in rules; docs/reports.md has the table (a test checks every rule is there).
BUILT_IN: dict[str, RuleConfig] = {
    "queue_without_worker": RuleConfig(for_s=60, severity="critical"),
    "oldest_message_age": RuleConfig(threshold=300),
    "queue_growing": RuleConfig(threshold=100, window_s=300),
    "task_error_rate": RuleConfig(threshold=0.1, window_s=300, min_count=5, severity="critical"),
    "dead_letters": RuleConfig(for_s=0, window_s=300),
    "ledger_anomaly": RuleConfig(for_s=0, window_s=600),
    "ledger_rejection_rate": RuleConfig(threshold=0.2, window_s=300, min_count=20),
    "report_missing": RuleConfig(for_s=0, severity="critical"),
    "broker_latency": RuleConfig(threshold=0.5),
    "database_latency": RuleConfig(threshold=1.0),
    "worker_memory": RuleConfig(threshold=90, for_s=120),
}


class AlertsConfig(BaseModel):
    """Every key of the `alerts` section; see docs/reports.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    evaluate_every_s: float = Field(default=30.0, ge=5, le=3600)
    repeat_after_s: float = Field(default=4 * 3600.0, ge=0)
    rules: dict[str, RuleConfig] = Field(default_factory=dict)
    custom: list[CustomRule] = Field(default_factory=list)
    webhooks: list[WebhookTarget] = Field(default_factory=list)
    # The report's channels (the `notifications` section) that also receive alerts.
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["slack", "email"]))
    history_days: int = Field(default=30, ge=1)
    # Where the console answers for the people who receive the alerts: an approval request links to its run there.
    console_url: str = Field(default="http://127.0.0.1:8000/console", max_length=500, pattern=r"^https?://")

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: dict[str, RuleConfig]) -> dict[str, RuleConfig]:
        unknown = sorted(set(value) - set(BUILT_IN))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; built in: {sorted(BUILT_IN)}")
        return value

    @property
    def lease_s(self) -> float:
        """How long a dead evaluator keeps the lease: another process takes over within this."""
        return 3 * self.evaluate_every_s

    def rule(self, name: str) -> RuleConfig:
        """A built-in rule's settings: its defaults with what the section sets merged over them."""
        base = BUILT_IN[name]
        given = self.rules.get(name)
        return base.model_copy(update=given.model_dump(exclude_unset=True)) if given else base


def alerts_config(raw: dict[str, Any]) -> AlertsConfig:
    """The `alerts` section validated; ReportConfigError names the bad key."""
    return validate_section(AlertsConfig, "alerts", raw, ReportConfigError)

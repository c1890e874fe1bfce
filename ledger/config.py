"""The `ledger` section of FLEET_CONFIG, validated; every key is documented in docs/ledger.md."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config_sections import validate_section
from ledger import ConfigError

PriorityName = Literal["critical", "high", "normal", "low"]

# Keys a `config_changed` event may set; each maps to a field of LedgerConfig.
CHANGEABLE_KEYS: tuple[str, ...] = (
    "amount_limit",
    "max_skew_seconds",
    "regress_tolerance_seconds",
    "filters",
    "priority_rules",
    "precision",
)


class Match(BaseModel):
    """What a filter or priority rule matches; every given field must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_types: list[str] | None = None
    account: str | None = Field(default=None, description="glob on any account the event touches")
    contract_id: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None


class FilterRule(Match):
    """Include or exclude events; excluded events are `skipped`."""

    action: Literal["include", "exclude"]


class PriorityRule(Match):
    """Raise the priority of matching events to `level` (never lowers it)."""

    level: PriorityName


class AnomalyConfig(BaseModel):
    """Amount and rate anomaly detection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: int = Field(default=30, ge=2)
    window: int = Field(default=50, ge=5)
    alpha: float = Field(default=0.1, gt=0, lt=1)
    threshold: float = Field(default=4.0, gt=0)


class LedgerConfig(BaseModel):
    """Every key of the `ledger` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount_limit: Decimal = Field(default=Decimal(1000), gt=0)
    default_precision: int = Field(default=2, ge=0, le=18)
    precision: dict[str, int] = Field(default_factory=lambda: {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3})
    max_skew_seconds: float = Field(default=300.0, ge=0)
    regress_tolerance_seconds: float = Field(default=0.0, ge=0)
    payload_limit_bytes: int = Field(default=65536, ge=256)
    api_versions: list[str] = Field(default_factory=lambda: ["v1", "v2"])
    filters: list[FilterRule] = Field(default_factory=list)
    priority_rules: list[PriorityRule] = Field(default_factory=list)
    sequence_wait_seconds: float = Field(default=5.0, ge=0, le=240)
    sequence_retry_countdown: float = Field(default=0.5, gt=0, le=60)
    snapshot_retention_days: int = Field(default=30, ge=1)
    config_keys: list[str] = Field(default_factory=lambda: list(CHANGEABLE_KEYS))
    batch_chunk_size: int = Field(default=2000, ge=1, le=20000)
    # Data fields logged only masked (acc***89); accounts are always masked.
    # In ledger.quick_run_batch, accepted events are counted and stored but not logged one line each.
    log_accepted_in_batches: bool = False
    sensitive_fields: list[str] = Field(default_factory=lambda: ["transaction_id"])
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)

    def scale(self, currency: str) -> int:
        """Decimal places of the currency (minor units per major unit = 10**scale)."""
        return self.precision.get(currency, self.default_precision)

    def changed(self, overrides: dict[str, Any]) -> LedgerConfig:
        """A copy with `config_changed` values applied (already validated)."""
        if not overrides:
            return self
        return LedgerConfig.model_validate({**self.model_dump(), **overrides})


def load_config(section: dict[str, Any]) -> LedgerConfig:
    """Validate the `ledger` section; ConfigError names the bad key."""
    return validate_section(LedgerConfig, "ledger", section, ConfigError, prefix="invalid FLEET_CONFIG: ")


def check_change(key: str, value: Any, config: LedgerConfig) -> str | None:
    """Why a `config_changed` value is invalid for its key, or None when it is valid."""
    try:
        config.changed({key: value})
    except ValidationError as exc:
        return "; ".join(e["msg"] for e in exc.errors())
    return None

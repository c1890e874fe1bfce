"""The one settings object: `FLEET_*` environment variables plus an optional YAML file."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.constants import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL, MAX_COUNTDOWN_S, TIME_LIMITS
from worker.errors import SettingsError
from worker.redis_urls import SENTINEL_SCHEME, is_sentinel, mask, parse_sentinel, tls_options

# Top-level sections of FLEET_CONFIG; each package validates its own section with its own model.
CONFIG_SECTIONS = frozenset({"ledger", "agents", "reports", "gateway", "notifications", "logging", "alerts"})


class Settings(BaseSettings):
    """Every setting the fleet reads, validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", extra="ignore", frozen=True)

    broker_url: str = DEFAULT_BROKER_URL
    result_backend: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    config: Path | None = None
    timezone: str = "UTC"
    api_keys: SecretStr | None = None
    flower_auth: SecretStr | None = None
    log_dir: Path = Path("var/log")
    log_level: str = "INFO"
    report_dir: Path = Path("var/reports")
    visibility_timeout: int = Field(default=3600, ge=1)
    # A consumer silent this long counts as lost: a live worker gives its messages back to their queues.
    worker_lost_after_s: float = Field(default=30.0, ge=1.0)
    # A worker whose queues hold messages while it receives nothing for this long exits to be restarted; 0: off.
    watchdog_stall_s: float = Field(default=300.0, ge=0)
    language: str = "en"
    # Redis Sentinel (broker or result backend URL `sentinel://h1:26379;sentinel://h2:26379/0`) and TLS (`rediss://`).
    sentinel_master: str | None = None
    sentinel_password: SecretStr | None = None
    redis_ca_cert: Path | None = None
    redis_client_cert: Path | None = None
    redis_client_key: Path | None = None
    # A standby beat takes over within this many seconds of the active one's death (its Redis lock's TTL).
    beat_lock_timeout_s: int = Field(default=30, ge=3, le=3600)
    # Run on the libraries' own code, none of the fleet's patches of their internals (worker/patches.py).
    stock_libraries: bool = False
    yaml_config: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _broker_is_redis(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.partition("://")[0]
        if scheme not in {"redis", "rediss", "redis+socket", SENTINEL_SCHEME}:
            raise ValueError(f"must be a redis://, rediss:// or sentinel:// URL, got scheme {scheme!r}")
        if scheme == SENTINEL_SCHEME:
            parse_sentinel(value)
        return value

    @field_validator("redis_ca_cert", "redis_client_cert", "redis_client_key")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _sentinel_has_a_master(self) -> Settings:
        if (is_sentinel(self.broker_url) or is_sentinel(self.backend_url)) and not self.sentinel_master:
            raise ValueError("a sentinel:// URL needs FLEET_SENTINEL_MASTER, the name the Sentinels monitor")
        if (self.redis_client_cert is None) != (self.redis_client_key is None):
            raise ValueError("FLEET_REDIS_CLIENT_CERT and FLEET_REDIS_CLIENT_KEY go together")
        return self

    @field_validator("database_url")
    @classmethod
    def _database_is_known(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.split("+")[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(f"must be a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("flower_auth")
    @classmethod
    def _flower_auth_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            user, sep, password = value.get_secret_value().partition(":")
            if not (user and sep and password):
                raise ValueError("must be user:password with both parts non-empty")
        return value

    @field_validator("language")
    @classmethod
    def _language_known(cls, value: str) -> str:
        if value not in {"en", "ko"}:
            raise ValueError("must be 'en' or 'ko'")
        return value

    @model_validator(mode="after")
    def _visibility_covers_longest_task(self) -> Settings:
        # A message not acknowledged within the visibility timeout is redelivered to another worker:
        # shorter than the longest task plus its countdown, and a task runs twice.
        longest = max(hard for _soft, hard in TIME_LIMITS.values()) + MAX_COUNTDOWN_S
        if self.visibility_timeout <= longest:
            raise ValueError(
                f"FLEET_VISIBILITY_TIMEOUT={self.visibility_timeout} must exceed the longest task "
                f"plus countdown ({longest} s), or tasks in flight are delivered twice"
            )
        return self

    @property
    def backend_url(self) -> str:
        """The result backend: the broker unless set."""
        return self.result_backend or self.broker_url

    def redis_tls(self, url: str) -> dict[str, Any] | None:
        """SSL options for a `rediss://` URL (the CA and client certificate settings); None otherwise."""
        if not url.startswith("rediss://"):
            return None
        return tls_options(self.redis_ca_cert, self.redis_client_cert, self.redis_client_key)

    @property
    def api_key_list(self) -> list[str]:
        """API keys given in the environment (comma-separated)."""
        raw = self.api_keys.get_secret_value() if self.api_keys else ""
        return [key.strip() for key in raw.split(",") if key.strip()]

    def section(self, name: str) -> dict[str, Any]:
        """One section of FLEET_CONFIG, empty when absent."""
        if name not in CONFIG_SECTIONS:
            raise KeyError(f"unknown config section {name!r}")
        value = self.yaml_config.get(name) or {}
        return dict(value)

    def masked(self) -> dict[str, Any]:
        """The settings as JSON-ready values, secrets and URL passwords masked."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else ""
            elif isinstance(value, str) and "://" in value:
                out[name] = mask_url(value)
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        return out


def mask_url(url: str) -> str:
    """A URL (each part of a Sentinel list) with its password replaced by ***."""
    return mask(url)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"FLEET_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"FLEET_CONFIG: {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"FLEET_CONFIG: {path} must hold a mapping at the top level")
    unknown = sorted(set(loaded) - CONFIG_SECTIONS)
    if unknown:
        raise SettingsError(f"FLEET_CONFIG: {path} has unknown sections {unknown}; known: {sorted(CONFIG_SECTIONS)}")
    return loaded


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; a bad value raises SettingsError naming the variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = f"FLEET_{field.upper()}" if error["loc"] else "settings"
            problems.append(f"{variable}: {error['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    if settings.config is not None:
        settings = settings.model_copy(update={"yaml_config": _read_yaml(settings.config)})
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()

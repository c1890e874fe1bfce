"""Settings: read once from FLEET_* and FLEET_CONFIG, refusing bad values with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import SettingsError
from worker.settings import load_settings, mask_url


def test_defaults_follow_the_public_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLEET_BROKER_URL", "FLEET_DATABASE_URL", "FLEET_FLOWER_AUTH", "FLEET_LOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.backend_url == settings.broker_url
    assert settings.database_url == "sqlite:///var/fleet.db"
    assert settings.flower_auth is None  # a secret has no default


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("FLEET_BROKER_URL", "amqp://guest@localhost//", "FLEET_BROKER_URL"),
        ("FLEET_DATABASE_URL", "mysql://x@y/z", "FLEET_DATABASE_URL"),
        ("FLEET_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("FLEET_FLOWER_AUTH", "admin", "user:password"),
        ("FLEET_VISIBILITY_TIMEOUT", "60", "must exceed the longest task"),
        ("FLEET_VISIBILITY_TIMEOUT", "soon", "FLEET_VISIBILITY_TIMEOUT"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=fragment):
        load_settings()


def test_yaml_sections_are_read_and_unknown_ones_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    good = tmp_path / "fleet.yaml"
    good.write_text("ledger:\n  amount_limit: '1000'\n")
    monkeypatch.setenv("FLEET_CONFIG", str(good))
    assert load_settings().section("ledger") == {"amount_limit": "1000"}

    bad = tmp_path / "bad.yaml"
    bad.write_text("ledgr: {}\n")
    monkeypatch.setenv("FLEET_CONFIG", str(bad))
    with pytest.raises(SettingsError, match="unknown sections \\['ledgr'\\]"):
        load_settings()


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEET_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(SettingsError, match="FLEET_CONFIG: cannot read"):
        load_settings()


def test_masked_settings_hide_secrets_and_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_DATABASE_URL", "postgresql://fleet:hunter2@db:5432/fleet")
    monkeypatch.setenv("FLEET_API_KEYS", "k1,k2")
    masked = load_settings().masked()
    assert "hunter2" not in str(masked)
    assert masked["api_keys"] == "***"
    assert mask_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"

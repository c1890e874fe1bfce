"""Every FLEET_CONFIG section refuses a bad value with one message naming each bad key, in one shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agents.config import load_config as agents_config
from agents.errors import ConfigError as AgentsConfigError
from beat.config import notifications_config, reports_config
from beat.errors import ReportConfigError
from gateway.config import parse_config as gateway_config
from ledger import ConfigError as LedgerConfigError
from ledger.config import load_config as ledger_config
from worker.errors import SettingsError
from worker.logging import parse_log_files


@pytest.mark.parametrize(
    ("load", "raw", "error", "message"),
    [
        (
            agents_config,
            {"max_subtasks": 0, "nope": 1},
            AgentsConfigError,
            "FLEET_CONFIG: agents.max_subtasks: Input should be greater than or equal to 1; "
            "agents.nope: Extra inputs are not permitted",
        ),
        (
            ledger_config,
            {"max_skew_seconds": "x"},
            LedgerConfigError,
            "invalid FLEET_CONFIG: ledger.max_skew_seconds: Input should be a valid number, "
            "unable to parse string as a number",
        ),
        (
            reports_config,
            {"report_time": "25:00"},
            ReportConfigError,
            "FLEET_CONFIG: reports.report_time: Value error, must be HH:MM, got '25:00'",
        ),
        (
            notifications_config,
            {"send": "sometimes"},
            ReportConfigError,
            "FLEET_CONFIG: notifications.send: Input should be 'always', 'issues' or 'never'",
        ),
        (
            gateway_config,
            {"rate_limit": 0},
            SettingsError,
            "FLEET_CONFIG: gateway.rate_limit: Input should be greater than or equal to 1",
        ),
        (
            parse_log_files,
            {"backup_count": -1},
            SettingsError,
            "FLEET_CONFIG: logging.backup_count: Input should be greater than or equal to 0",
        ),
    ],
)
def test_a_bad_section_value_is_refused_with_the_key_and_the_reason(
    load: Callable[[dict[str, Any]], Any], raw: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        load(raw)

    assert str(refused.value) == message
    assert refused.value.__cause__ is None and refused.value.__suppress_context__

"""Secrets never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest

from worker import logging as fleet_logging
from worker.masking import mask_identifier, mask_text, mask_value


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("login password=hunter2 ok", "hunter2"),
        ('{"api_key": "sk-live-123"}', "sk-live-123"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("redis://:s3cret@redis:6379/0", "s3cret"),
        ("card 4111 1111 1111 1111 charged", "4111 1111 1111 1111"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "T000/B000/XXXX"),
    ],
)
def test_secrets_in_text_are_redacted(raw: str, secret: str) -> None:
    assert secret not in mask_text(raw)


def test_numbers_that_are_not_cards_are_kept() -> None:
    assert mask_text("order 1234567890123 shipped") == "order 1234567890123 shipped"


def test_secret_keys_are_redacted_in_nested_fields() -> None:
    masked = mask_value("payload", {"user": "ana", "token": "t-1", "nested": [{"password": "x"}]})
    assert masked == {"user": "ana", "token": "***", "nested": [{"password": "***"}]}


def test_identifiers_keep_a_recognisable_head_and_tail() -> None:
    assert mask_identifier("acc-000189") == "acc***89"
    assert mask_identifier("ab") == "***"


def test_a_log_line_is_json_with_context_and_no_secret(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    fleet_logging.configure("unit", tmp_path, "INFO")
    try:
        with fleet_logging.bound(correlation_id="corr-1", run_id="run-9"):
            logging.getLogger("fleet.test").info("connecting with token=abc123", extra={"api_key": "k"})
    finally:
        fleet_logging.stop()
    line = (tmp_path / "unit.jsonl").read_text().strip().splitlines()[-1]
    record = json.loads(line)
    assert record["correlation_id"] == "corr-1"
    assert record["run_id"] == "run-9"
    assert record["api_key"] == "***"
    assert "abc123" not in line
    assert record["category"] == "system"


def test_celery_lines_that_print_task_arguments_are_dropped_but_retries_and_failures_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet_logging.configure("unit", tmp_path, "INFO")
    try:
        from celery.app.trace import LOG_RECEIVED, LOG_RETRY, LOG_SUCCESS

        args = {"name": "x", "id": "1", "args": "['acc-000189']", "kwargs": "{}", "eta": None}
        logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, args)
        result = {"name": "x", "id": "1", "runtime": 0.1, "return_value": "{'account': 'acc-000189'}"}
        logging.getLogger("celery.app.trace").info(LOG_SUCCESS, result)
        logging.getLogger("celery.app.trace").info(LOG_RETRY, {"name": "x", "id": "3", "exc": "database is locked"})
        logging.getLogger("celery.app.trace").error("Task x[2] raised: boom")
    finally:
        fleet_logging.stop()
    text = (tmp_path / "unit.jsonl").read_text()
    assert "acc-000189" not in text
    assert "boom" in text
    assert "database is locked" in text  # retries are still logged

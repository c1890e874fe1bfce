"""Secrets never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from worker import logging as fleet_logging
from worker.masking import _MAYBE_SECRET, _maybe_secret, mask_identifier, mask_text, mask_value


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


@pytest.mark.parametrize(
    "raw",
    ["PassWord=x", "AUTHORIZATION: Basic eA==", "x-Api-Key: k", "ToKeN", "4111-1111-1111-1111", "HOOKS.SLACK.COM/x"],
)
def test_the_secrets_quick_check_ignores_case_like_the_patterns(raw: str) -> None:
    assert _maybe_secret(raw)


# Text built from the patterns' own words, digits, separators and letters that re.I folds outside ASCII.
_PIECES = st.sampled_from(["pass", "PASS", "Token", "api", "://", "bearer", "hooks.slack.com", " ", "-", "="])
_TEXT = st.lists(st.one_of(_PIECES, st.text(alphabet="0123456789 -aKkſıİ\u212a\u017fx", max_size=6)), max_size=12)


@given(_TEXT.map("".join))
@example("paſsword")  # re.I matches the long s as an s, and the dotless i as an i; lower() leaves both
@example("x-apı-key")
def test_the_secrets_quick_check_agrees_with_the_case_insensitive_pattern(text: str) -> None:
    assert _maybe_secret(text) == bool(_MAYBE_SECRET.search(text))


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


def test_celery_lines_that_print_task_arguments_are_not_built_but_retries_and_failures_are_logged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given Celery's own tracer, built as a worker's pool process builds it once logging is configured
    from celery import Celery
    from celery.app.trace import build_tracer

    import worker.signals  # noqa: F401  (the fleet's retry and failure lines)

    fleet_logging.configure("unit", tmp_path, "INFO")
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: made.append(record := factory(*a, **k)) or record)
    try:
        app = Celery("unit-trace", broker="memory://", backend="cache+memory://")

        @app.task(name="unit.echo")
        def echo(account: str) -> dict[str, str]:
            return {"account": account}

        @app.task(name="unit.flaky", bind=True, max_retries=1)
        def flaky(self, account: str) -> None:  # type: ignore[no-untyped-def]
            raise self.retry(exc=RuntimeError("database is locked"), countdown=0)

        @app.task(name="unit.broken")
        def broken(account: str) -> None:
            raise ValueError("boom")

        # When each runs with an account id as its argument
        for task in (echo, flaky, broken):
            tracer = build_tracer(task.name, task, app.loader, "unit@host", app=app)
            tracer(f"id-{task.name}", ["acc-000189"], {}, {"id": f"id-{task.name}", "delivery_info": {}})
    finally:
        logging.setLogRecordFactory(factory)
        fleet_logging.stop()
    text = (tmp_path / "unit.jsonl").read_text()
    # Then no line prints the argument or the result, and Celery did not even build its per-task INFO records
    assert "acc-000189" not in text
    assert not [r for r in made if r.name in fleet_logging.ARGUMENT_LOGGERS and r.levelno < logging.WARNING]
    assert not logging.getLogger("celery.worker.strategy").isEnabledFor(logging.INFO)  # its "received" line
    # And the retry and the failure are logged, with the task's name
    lines = [json.loads(line) for line in text.splitlines()]
    retry = [line for line in lines if "retry" in line["message"]]
    assert retry and "database is locked" in retry[0]["message"] and retry[0]["task_name"] == "unit.flaky"
    assert any("boom" in line["message"] and line["level"] == "ERROR" for line in lines)


def test_a_quieter_root_level_is_kept_for_celerys_task_loggers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet_logging.configure("unit", tmp_path, "ERROR")
    try:
        assert not logging.getLogger("celery.app.trace").isEnabledFor(logging.WARNING)
        assert logging.getLogger("celery.app.trace").isEnabledFor(logging.ERROR)
    finally:
        fleet_logging.stop()

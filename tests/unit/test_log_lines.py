"""Every log record is exactly one JSON line, whatever characters its fields carry."""

from __future__ import annotations

import json
import logging

import pytest

from worker.logging import json_formatter


@pytest.mark.parametrize("text", ["a\u2028b", "a\u2029b", "a\x85b", "a\nb\r", "줄 바꿈\u2028", "\x0b\x0c\x1c\x1d\x1e"])
def test_a_field_with_line_breaking_characters_stays_on_one_json_line(text: str) -> None:
    record = logging.LogRecord("fleet.test", logging.INFO, __file__, 1, "event %s", (text,), None)

    line = json_formatter().format(record)

    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == f"event {text}"

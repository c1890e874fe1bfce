"""A log record as one JSON line, its secrets masked and Celery's task arguments dropped."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder, JsonFormatter

from worker.masking import mask_text, mask_value


class TaskArgumentsFilter(logging.Filter):
    """Drops the `data` field Celery puts on its task lines: the task's arguments in clear (its failure line
    prints the exception and the traceback in the message itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("data", None)
        return True


# Where a formatted line is kept on the record; a standard attribute, so never written out as a field.
_FORMATTED = "_fleet_line"
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", _FORMATTED}


class MaskingFilter(logging.Filter):
    """Redacts secrets in the message, its arguments and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = None
        for key in list(record.__dict__):
            if key not in _STANDARD:
                record.__dict__[key] = mask_value(key, record.__dict__[key])
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# Characters that str.splitlines() (and many log shippers) treat as line breaks, which JSON leaves unescaped.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


_ENCODER = JsonEncoder()


def _dumps(data: dict[str, Any], **options: Any) -> str:
    """A log line's JSON, by orjson (python-json-logger's encoder for the types orjson does not know); the
    standard library's for what orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(data, default=_ENCODER.default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(data, cls=JsonEncoder, ensure_ascii=options.get("ensure_ascii", False))


class OneLineJsonFormatter(JsonFormatter):
    """JSON that stays on one line for every reader: the few line-breaking characters JSON allows are escaped.

    A record is formatted once: the file handler formats it twice (its size check, then the line) and the
    stderr handler once more, so the line is kept on the record (the listener's own copy) for this formatter.
    The common record (a text message, no exception or stack) is laid out here, with python-json-logger's
    fields in its order, and serialised by orjson (the cheaper path). python-json-logger formats the rest.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        cached = record.__dict__.get(_FORMATTED)
        if cached is not None and cached[0] is self:
            return str(cached[1])
        if isinstance(record.msg, dict) or record.exc_info or record.exc_text or record.stack_info:
            line = str(super().format(record))
        else:
            line = self._plain(record)
        line = line.translate(_LINE_BREAKS)
        record.__dict__[_FORMATTED] = (self, line)
        return line

    def _plain(self, record: logging.LogRecord) -> str:
        # What python-json-logger's format() builds for such a record: the format's fields renamed, then every
        # attribute that is not reserved and does not start with "_".
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        rename, skip = self.rename_fields, self._skip_fields
        data = {rename.get(field, field): record.__dict__.get(field) for field in self._required_fields}
        for key, value in record.__dict__.items():
            if key not in skip and not (isinstance(key, str) and key.startswith("_")):
                data[rename.get(key, key)] = value
        return _dumps(data)


def json_formatter() -> logging.Formatter:
    """The formatter of every fleet log line."""
    return OneLineJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "asctime": "ts"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        timestamp=False,
        json_ensure_ascii=False,
        json_serializer=_dumps,
        reserved_attrs=[*RESERVED_ATTRS, _FORMATTED],
    )

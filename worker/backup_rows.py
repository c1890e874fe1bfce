"""Rows of a backup as plain JSON, read back exactly on SQLite and PostgreSQL alike.

Times are written in UTC with their offset (SQLite hands them back without one: the fleet writes UTC), bytes in
base64, JSON columns as their value. A JSON column that is SQL NULL (not JSON `null`) is left out of its row, so
`IS NULL` finds the same rows after a restore.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Insert, LargeBinary, Table, null


def null_columns(table: Table) -> list[str]:
    """The nullable JSON columns: SQL NULL and JSON null are two values there."""
    return [c.name for c in table.columns if isinstance(c.type, JSON) and c.nullable]


def null_flag(name: str) -> str:
    """The label of the `IS NULL` flag selected beside a nullable JSON column."""
    return f"null__{name}"


def encode_row(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """One row as JSON-ready values; a nullable JSON column that is SQL NULL is left out."""
    out: dict[str, Any] = {}
    for column in table.columns:
        if row.get(null_flag(column.name)):
            continue
        value = row[column.name]
        if value is None:
            out[column.name] = None
        elif isinstance(column.type, DateTime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            out[column.name] = aware.astimezone(UTC).isoformat()
        elif isinstance(column.type, Date):
            out[column.name] = value.isoformat()
        elif isinstance(column.type, LargeBinary):
            out[column.name] = base64.b64encode(value).decode("ascii")
        else:
            out[column.name] = value
    return out


def decode_row(table: Table, encoded: Mapping[str, Any]) -> dict[str, Any]:
    """The values to insert for one encoded row; ValueError when it does not fit the table."""
    if not isinstance(encoded, Mapping):
        raise ValueError(f"table {table.name}: a row must be a JSON object")
    unknown = set(encoded) - set(table.columns.keys())
    if unknown:
        raise ValueError(f"table {table.name}: unknown columns {sorted(unknown)}")
    out: dict[str, Any] = {}
    for column in table.columns:
        if column.name not in encoded:
            if column.name in null_columns(table):
                continue
            raise ValueError(f"table {table.name}: a row has no {column.name}")
        value = encoded[column.name]
        if value is not None and isinstance(column.type, DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column.type, Date):
            value = date.fromisoformat(value)
        elif value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64decode(value, validate=True)
        out[column.name] = value
    return out


def decode_rows(table: Table, lines: Iterable[str], batch: int) -> Iterator[tuple[Insert, list[dict[str, Any]]]]:
    """INSERT statements with their rows, `batch` at most each; rows with the same SQL NULL columns go together."""
    import json

    nullable = null_columns(table)
    pending: list[dict[str, Any]] = []
    nulls: tuple[str, ...] = ()
    for line in lines:
        row = decode_row(table, json.loads(line))
        row_nulls = tuple(name for name in nullable if name not in row)
        if pending and (row_nulls != nulls or len(pending) >= batch):
            yield _insert(table, nulls), pending
            pending = []
        nulls = row_nulls
        pending.append(row)
    if pending:
        yield _insert(table, nulls), pending


def _insert(table: Table, nulls: tuple[str, ...]) -> Insert:
    statement = table.insert()
    return statement.values({name: null() for name in nulls}) if nulls else statement

"""Rows of a backup as plain JSON, read back exactly on SQLite and PostgreSQL alike.

Times are written in UTC with their offset (SQLite hands them back without one: the fleet writes UTC), bytes in
base64, JSON columns as their value. A JSON column that is SQL NULL (not JSON `null`) is left out of its row, so
`IS NULL` finds the same rows after a restore.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Insert, LargeBinary, Table, null


def null_columns(table: Table) -> list[str]:
    """The nullable JSON columns: SQL NULL and JSON null are two values there."""
    return [c.name for c in table.columns if isinstance(c.type, JSON) and c.nullable]


def null_flag(name: str) -> str:
    """The label of the `IS NULL` flag selected beside a nullable JSON column."""
    return f"null__{name}"


def _time(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _encoder(column: Any) -> Callable[[Any], Any] | None:
    if isinstance(column.type, DateTime):
        return _time
    if isinstance(column.type, Date):
        return date.isoformat
    if isinstance(column.type, LargeBinary):
        return lambda value: base64.b64encode(value).decode("ascii")
    return None


def row_encoder(table: Table) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Encodes a row selected as the table's columns then one `IS NULL` flag per nullable JSON column: JSON-ready
    values, a nullable JSON column that is SQL NULL left out."""
    nullable = null_columns(table)
    plan = [
        (
            column.name,
            _encoder(column),
            len(table.columns) + nullable.index(column.name) if column.name in nullable else None,
        )
        for column in table.columns
    ]

    def encode(row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for position, (name, encoder, flag) in enumerate(plan):
            if flag is not None and row[flag]:
                continue
            value = row[position]
            out[name] = value if value is None or encoder is None else encoder(value)
        return out

    return encode


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

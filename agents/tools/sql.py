"""`sql.query:v1`: one read-only SELECT over allow-listed tables, parsed with sqlglot, LIMIT added."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from agents.errors import ToolInputError, ToolUnavailable
from agents.tools import Tool, ToolContext

# Functions a read-only query may use; anything else (load_extension, readfile, pg_sleep...) is refused.
ALLOWED_FUNCTIONS = frozenset(
    {
        "count", "sum", "avg", "min", "max", "lower", "upper", "length", "coalesce", "abs", "round",
        "substr", "substring", "trim", "date", "cast", "strftime", "datetime", "nullif", "ifnull", "iif",
        "exists",
    }
)  # fmt: skip
_WRITES = (
    exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Command, exp.Merge,
    exp.TruncateTable, exp.Pragma, exp.Attach, exp.Detach, exp.Transaction, exp.Commit, exp.Rollback,
)  # fmt: skip


def _called(node: exp.Func) -> str | None:
    """The function SQLite will be asked to call for the node (sqlglot names `strftime` TimeToStr inside), None
    when the node renders as no call at all (CASE, a column sqlglot wrapped); the round trip in `check_select`
    makes the rendering the text that runs."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    called = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", node.sql(dialect="sqlite"))
    return called.group(1).lower() if called else None


def _folded(name: str) -> str:
    """A table name as SQLite compares it: ASCII letters case-insensitively, nothing else folded."""
    return name.lower() if name.isascii() else name


def _parse(sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except SqlglotError as exc:  # ParseError, and TokenError for text such as a lone backquote
        raise ToolInputError(f"cannot parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise ToolInputError(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.Union | exp.Except | exp.Intersect):
        raise ToolInputError(f"only SELECT is allowed, got {tree.key.upper()}")
    return tree


def _check_nodes(tree: exp.Expression) -> None:
    """No write, no function outside the list, no recursive CTE (it grows without bound)."""
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise ToolInputError(f"{node.key.upper()} is not allowed in a read-only query")
        if isinstance(node, exp.Func) and (name := _called(node)) is not None and name not in ALLOWED_FUNCTIONS:
            raise ToolInputError(f"function {name} is not allowed")
        if isinstance(node, exp.With) and node.args.get("recursive"):
            raise ToolInputError("recursive CTEs are not allowed")
        # SQLite makes a CTE that reads its own name recursive, RECURSIVE or not.
        if isinstance(node, exp.CTE) and any(
            _folded(t.name) == _folded(node.alias) for t in node.this.find_all(exp.Table)
        ):
            raise ToolInputError(f"CTE {node.alias} reads itself: recursive CTEs are not allowed")


def _check_tables(tree: exp.Expression, tables: tuple[str, ...]) -> None:
    """Each table reference resolved in its own scope: a CTE visible there, or an allowed table; anything the
    resolver does not place is refused."""
    allowed = {_folded(t) for t in tables}
    refused = f"; allowed: {', '.join(tables)}"
    placed: set[int] = set()
    try:
        scopes = traverse_scope(tree)
    except (SqlglotError, KeyError, ValueError) as exc:
        raise ToolInputError(f"cannot resolve the query's tables: {exc}") from None
    for scope in scopes:
        for table in scope.tables:
            placed.add(id(table))
            if not isinstance(table.this, exp.Identifier):
                raise ToolInputError(f"table-valued function {table.this.sql()} is not allowed")
            if table.args.get("db") or table.args.get("catalog"):
                raise ToolInputError(f"table {table.sql()} is not allowed{refused}")
            if isinstance(scope.cte_sources.get(table.name), Scope):
                continue  # a CTE of this scope or an enclosing one: its own body was checked as a scope
            if _folded(table.name) not in allowed:
                raise ToolInputError(f"table {table.sql()} is not allowed{refused}")
    for table in tree.find_all(exp.Table):
        if id(table) not in placed:
            raise ToolInputError(f"table reference {table.sql()} cannot be resolved; it is refused")


def _checked(sql: str, tables: tuple[str, ...]) -> exp.Expression:
    tree = _parse(sql)
    _check_nodes(tree)
    _check_tables(tree, tables)
    return tree


def _render(tree: exp.Expression) -> str:
    # Comments are dropped: a comment re-rendered by the generator is text the checker never parsed as SQL.
    return str(tree.sql(dialect="sqlite", comments=False))


def check_select(sql: str, tables: tuple[str, ...], limit: int) -> str:
    """The statement rewritten with a LIMIT; ToolInputError unless it is one safe SELECT."""
    tree = _checked(sql, tables)
    current = tree.args.get("limit")
    if current is None or not isinstance(current.expression, exp.Literal) or int(current.expression.name) > limit:
        tree = tree.limit(limit)  # type: ignore[attr-defined]
    statement = _render(tree)
    # What runs is the generated text, not the input: it must parse back to the same checked statement.
    if _render(_checked(statement, tables)) != statement:
        raise ToolInputError("the query does not read the same after rewriting; it is refused")
    return statement


def sqlite_authorizer(tables: tuple[str, ...]) -> Callable[[int, str | None, str | None, str | None, str | None], int]:
    """An authorizer for a SQLite connection (`set_authorizer`): SELECT, functions and reads of the allowed tables
    only. A second line behind `check_select`: SQLite itself names every table a statement reads."""
    allowed = {_folded(t) for t in tables}
    permitted = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION}

    def authorize(action: int, table: str | None, column: str | None, _db: str | None, _source: str | None) -> int:
        if action in permitted:
            return sqlite3.SQLITE_OK
        # A read without a column (count(*)) reads no value, and SQLite reports a CTE's name that way too.
        if action == sqlite3.SQLITE_READ and (not column or _folded(table or "") in allowed):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


def _run(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    config = context.config
    statement = check_select(args["query"], config.sql_tables, config.sql_row_limit)
    if context.sql is None:
        raise ToolUnavailable("sql.query has no database connection in this process")
    rows = context.sql.run_select(statement, config.sql_timeout_ms)
    return {"query": statement, "rows": rows, "row_count": len(rows)}


TOOL = Tool(
    name="sql.query",
    version="v1",
    description="One read-only SELECT over the fleet's own tables (allow-listed), a LIMIT added.",
    schema={
        "type": "object",
        "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 4000}},
        "required": ["query"],
        "additionalProperties": False,
    },
    run=_run,
    # The tables change under the query: a cached answer would be a stale one.
    cacheable=False,
)

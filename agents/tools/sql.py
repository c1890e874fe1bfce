"""`sql.query:v1`: one read-only SELECT over allow-listed tables, parsed with sqlglot, LIMIT added."""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from agents.errors import ToolInputError, ToolUnavailable
from agents.tools import Tool, ToolContext

# Functions a read-only query may use; anything else (load_extension, readfile, pg_sleep...) is refused.
ALLOWED_FUNCTIONS = frozenset(
    {
        "count", "sum", "avg", "min", "max", "lower", "upper", "length", "coalesce", "abs", "round",
        "substr", "substring", "trim", "date", "cast", "strftime", "datetime", "nullif", "ifnull",
    }
)  # fmt: skip
_WRITES = (
    exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Command, exp.Merge,
    exp.TruncateTable, exp.Pragma, exp.Attach, exp.Detach, exp.Transaction, exp.Commit, exp.Rollback,
)  # fmt: skip


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def check_select(sql: str, tables: tuple[str, ...], limit: int) -> str:
    """The statement rewritten with a LIMIT; ToolInputError unless it is one safe SELECT."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except SqlglotError as exc:  # ParseError, and TokenError for text such as a lone backquote
        raise ToolInputError(f"cannot parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise ToolInputError(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.Union):
        raise ToolInputError(f"only SELECT is allowed, got {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise ToolInputError(f"{node.key.upper()} is not allowed in a read-only query")
        if (
            isinstance(node, exp.Func)
            and not isinstance(node, exp.Cast)
            and _function_name(node) not in ALLOWED_FUNCTIONS
        ):
            raise ToolInputError(f"function {_function_name(node)} is not allowed")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name in ctes:
            continue
        if table.args.get("db") or table.args.get("catalog") or table.name not in tables:
            raise ToolInputError(f"table {table.sql()} is not allowed; allowed: {', '.join(tables)}")
    current = tree.args.get("limit")
    if current is None or not isinstance(current.expression, exp.Literal) or int(current.expression.name) > limit:
        tree = tree.limit(limit)
    return str(tree.sql(dialect="sqlite"))


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

"""The sql.query allow-list against generated SQL: every query the checker accepts is run on a real SQLite database
holding forbidden tables, and SQLite itself (its authorizer) says which tables the statement read."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agents.errors import ToolInputError
from agents.tools.sql import check_select

ALLOWED = ("agent_runs", "ledger_accounts")
FORBIDDEN = ("api_keys", "agent_snapshots", "secrets")
CANARY = "CANARY-"
# Every table has the one column `c`, so generated queries over any mix of them are valid SQL and really run.
COLUMN = "c"


@pytest.fixture(scope="module")
def database() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    for table in ALLOWED:
        connection.execute(f"CREATE TABLE {table} ({COLUMN} TEXT)")
        connection.execute(f"INSERT INTO {table} VALUES ('ok-{table}')")
    for table in FORBIDDEN:
        connection.execute(f"CREATE TABLE {table} ({COLUMN} TEXT)")
        connection.execute(f"INSERT INTO {table} VALUES ('{CANARY}{table}')")
    connection.commit()
    yield connection
    connection.close()


def _opened_tables(connection: sqlite3.Connection, sql: str, roots: dict[int, str]) -> set[str]:
    """Tables whose b-tree (or an index of theirs) the compiled statement opens for reading, from its bytecode:
    the authorizer alone does not report columns compared only through USING or NATURAL joins."""
    opened: set[str] = set()
    for _addr, opcode, _p1, p2, p3, *_rest in connection.execute(f"EXPLAIN {sql}").fetchall():
        if opcode in {"OpenRead", "ReopenIdx"}:
            opened.add(str(roots.get(p2, f"root page {p2}")).lower() if p3 == 0 else f"database {p3}")
        elif opcode == "VOpen":
            opened.add("a virtual table")
    return opened


def run_recording_reads(connection: sqlite3.Connection, sql: str) -> tuple[list[tuple[object, ...]], set[str]]:
    """The statement's rows (none when SQLite refuses it) and every table SQLite read to compute them."""
    read: set[str] = set()
    roots = {1: "sqlite_master"} | dict(connection.execute("SELECT rootpage, tbl_name FROM sqlite_master").fetchall())

    def record(action: int, table: str | None, column: str | None, *_rest: str | None) -> int:
        # A read without a column (count(*)) is reported under a CTE's name too: the bytecode settles those.
        if action == sqlite3.SQLITE_READ and column:
            read.add((table or "").lower())
        return sqlite3.SQLITE_OK

    deadline = time.monotonic() + 5  # a bound for a runaway query, not a measurement
    connection.set_authorizer(record)
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        read |= _opened_tables(connection, sql, roots)
        rows = connection.execute(sql).fetchall()
    except sqlite3.Error:
        rows = []  # refused or failed at run time: what SQLite read to get that far is recorded
    finally:
        connection.set_authorizer(None)
        connection.set_progress_handler(None, 0)
    return rows, read


def _spellings(name: str) -> list[str]:
    plain = [name] * 12  # mostly plain, so that many generated queries pass the checker and really run
    odd = [name.upper(), name.title(), f'"{name}"', f"[{name}]", f"`{name}`", f"main.{name}", f'"main"."{name}"',
           f"temp.{name}", f"main.[{name}]"]  # fmt: skip
    return plain + odd


OTHER_NAMES = [*FORBIDDEN, "sqlite_master", "sqlite_schema", "x", "y"]
TABLE_FUNCTIONS = [
    "pragma_table_info('api_keys')", "json_each('[1]')", "pragma_table_list()", "sqlite_dbpage('main')", "dbstat",
    "generate_series(1, 3)",
]  # fmt: skip
COMMENTS = st.sampled_from(
    ["", "", "", " /* c */ ", " -- c\n", " /* UNION SELECT c FROM api_keys */ ",
     " -- */ UNION SELECT c FROM api_keys\n", " /* -- */ ", " -- /* \n"]
)  # fmt: skip
TRICKS = st.sampled_from(
    ["PRAGMA table_info(api_keys)", "SELECT * FROM pragma_table_info('api_keys')", "ATTACH ':memory:' AS m",
     "SELECT c FROM api_keys", "SELECT sql FROM sqlite_master", "SELECT name FROM sqlite_schema",
     "SELECT c FROM agent_runs; SELECT c FROM api_keys", "VALUES ((SELECT c FROM api_keys))"]
)  # fmt: skip


@functools.cache
def _queries_over(other: str) -> st.SearchStrategy[str]:
    """SELECTs of the one column `c` over the allowed tables and one other name (so that a CTE named like it often
    shadows it where it is also read as a table), built from CTEs at any depth, subqueries, unions, joins on `c`
    (never ambiguous: every query is valid SQL) and comments; each name in any spelling SQLite accepts, now and
    then a table-valued function."""
    names = [*ALLOWED, other, other]
    spelled = [spelling for name in names for spelling in _spellings(name)]
    refs = st.sampled_from(spelled + TABLE_FUNCTIONS[:2])
    cte_names = st.sampled_from([n for n in spelled if "." not in n])
    aliases = st.sampled_from([*names, "a"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        derived = st.builds(lambda q, a: f"({q}) AS {a}", inner, aliases)
        source = st.one_of(refs, st.builds(lambda t, a: f"{t} AS {a}", refs, aliases), derived)
        where = st.one_of(
            st.just(""),
            st.builds(lambda q: f" WHERE c IN ({q})", inner),
            st.builds(lambda q: f" WHERE NOT EXISTS ({q})", inner),
            st.builds(lambda q: f" WHERE ({q}) IS NOT NULL", inner),
        )
        column = st.one_of(st.just(COLUMN), st.just("*"), st.builds(lambda q: f"({q}) AS {COLUMN}", inner))
        join = st.one_of(
            st.just(""), *(st.builds(f" {kind} {{}}{on}".format, source)
                           for kind, on in (("NATURAL JOIN", ""), ("LEFT JOIN", " USING (c)"), ("JOIN", " USING (c)")))
        )  # fmt: skip
        select = st.builds(
            lambda c, k, s, j, w, k2: f"SELECT{k} {c} FROM {s}{j}{w}{k2}",
            column,
            COMMENTS,
            source,
            join,
            where,
            COMMENTS,
        )
        cte = st.builds(lambda n, q: f"{n}({COLUMN}) AS ({q})", cte_names, inner)
        with_ = st.builds(
            lambda r, ctes, q: f"WITH {r}{', '.join(ctes)} {q}",
            st.sampled_from(["", "", "RECURSIVE "]),
            st.lists(cte, min_size=1, max_size=3),
            st.one_of(select, inner),
        )
        union = st.builds(lambda a, op, b: f"{a} {op} {b}", select, st.sampled_from(["UNION", "UNION ALL", "EXCEPT"]),
                          st.one_of(select, inner))  # fmt: skip
        return st.one_of(select, with_, with_, union)

    return st.recursive(st.builds(lambda t: f"SELECT {COLUMN} FROM {t}", refs), extend, max_leaves=8)


def queries() -> st.SearchStrategy[str]:
    """Generated SELECTs over the allowed tables and one other name, and known tricks."""
    return st.one_of(*(_queries_over(other) for other in OTHER_NAMES), TRICKS)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=queries())
def test_no_accepted_query_reads_a_table_outside_the_allow_list(database: sqlite3.Connection, sql: str) -> None:
    # Given any generated query
    try:
        statement = check_select(sql, ALLOWED, 100)
    except ToolInputError:
        event("refused")
        return
    # When the checker accepted it and SQLite runs what it returned
    rows, read = run_recording_reads(database, statement)
    event("accepted, ran" if rows else "accepted, no rows")
    # Then SQLite read allowed tables only, and no canary value of a forbidden table came back
    assert read <= set(ALLOWED), f"{sql!r} -> {statement!r} read {sorted(read - set(ALLOWED))}"
    assert not any(CANARY in str(value) for row in rows for value in row), f"{sql!r} returned a canary: {rows}"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT c FROM api_keys WHERE 1 IN (WITH api_keys AS (SELECT 1) SELECT 1)",
        "SELECT * FROM sqlite_master WHERE 1 IN (WITH sqlite_master AS (SELECT 1) SELECT 1)",
        "SELECT c FROM agent_snapshots WHERE EXISTS (WITH agent_snapshots(c) AS (SELECT 1) SELECT c FROM agent_snapshots)",
        "SELECT c FROM (SELECT 1) AS api_keys, api_keys",
        "WITH a(c) AS (SELECT c FROM agent_runs) SELECT c FROM a UNION SELECT c FROM api_keys",
        "SELECT c FROM agent_runs JOIN (WITH secrets(c) AS (SELECT 1) SELECT c FROM secrets) AS s USING (c) NATURAL JOIN secrets",
    ],
)
def test_a_cte_named_like_a_table_hides_that_table_only_in_its_own_scope(
    sql: str, database: sqlite3.Connection
) -> None:
    # Given a query whose forbidden table is shadowed by a CTE somewhere else: SQLite really reads the table
    _rows, read = run_recording_reads(database, sql)
    assert read - set(ALLOWED), "the oracle must see the forbidden read this query makes"
    # Then the checker refuses it
    with pytest.raises(ToolInputError, match="not allowed"):
        check_select(sql, ALLOWED, 100)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH agent_runs(c) AS (SELECT 1) SELECT c FROM agent_runs",
        "SELECT c FROM ledger_accounts WHERE c NOT IN (WITH x(c) AS (SELECT c FROM agent_runs) SELECT c FROM x)",
        "WITH a(c) AS (SELECT c FROM agent_runs), b(c) AS (SELECT c FROM a) SELECT c FROM b UNION ALL SELECT c FROM a",
        'SELECT "c" FROM [agent_runs] AS api_keys',
        "select c from AGENT_RUNS /* a comment */",
    ],
)
def test_ctes_subqueries_and_aliases_over_allowed_tables_still_run(sql: str, database: sqlite3.Connection) -> None:
    rows, read = run_recording_reads(database, check_select(sql, ALLOWED, 100))

    assert rows
    assert read <= set(ALLOWED)

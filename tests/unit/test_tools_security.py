"""Hostile input to the tools that reach a database or evaluate text: more cases than the tools' own tests."""

from __future__ import annotations

import pytest

from agents.errors import ToolInputError
from agents.tools.calculator import calculate
from agents.tools.sql import check_select

TABLES = ("agent_runs", "audit_events")


@pytest.mark.parametrize(
    "query",
    [
        "insert into agent_runs (run_id) values ('x')",
        "replace into agent_runs (run_id) values ('x')",
        "create table t (a int)",
        "drop table agent_runs",
        "alter table agent_runs add column x int",
        "vacuum",
        "detach database other",
        "ATTACH 'file:/tmp/x.db' AS x",
        "PRAGMA writable_schema = 1",
        "pragma journal_mode",
        "with gone as (delete from agent_runs returning *) select * from gone",
        "select 1; select 2",
        "SELECT status FROM agent_runs;DELETE FROM agent_runs",
        "select 1 -- harmless\n; drop table agent_runs",
        "select readfile('/etc/passwd')",
        "select writefile('/tmp/x', 'y')",
        "select randomblob(1000000000)",
        "select zeroblob(1000000000)",
        "select load_extension('/tmp/evil.so')",
        "select fts3_tokenizer('simple')",
        "select * from sqlite_schema",
        "select * from pragma_table_info('agent_runs')",
        "select * from main.sqlite_master",
        "SELECT prefix,name,scopes,token_sha256 FROM api_keys WHERE 1 IN (WITH api_keys AS (SELECT 1) SELECT 1)",
        "SELECT * FROM agent_snapshots WHERE EXISTS (WITH agent_snapshots AS (SELECT 1) SELECT 1)",
        "select * from main.agent_runs",
        "WITH RECURSIVE r(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM r) SELECT max(length(x)) FROM r",
        "WITH agent_runs(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM agent_runs) SELECT x FROM agent_runs",
        "select * from json_each('[1]')",
        "",
        "`",
        "select 'unterminated",
    ],
)
def test_sql_query_refuses_anything_but_one_read_of_an_allowed_table(query: str) -> None:
    with pytest.raises(ToolInputError):
        check_select(query, TABLES, 100)


@pytest.mark.parametrize(
    "expression",
    [
        "__builtins__",
        "open('/etc/passwd')",
        "getattr(1, 'real')",
        "().__class__.__bases__",
        "sqrt.__globals__",
        "abs(-1).__class__",
        "1e308 * 10",
        "1" * 70,
        "x",
        "2 ** 10 ** 10",
        "(10 ** 6) ** (10 ** 6)",
        "2 ** 100000",
        "10 ** -100000",
        "9 ** 9 ** 9 ** 9",
        "1e999999",
        "'1' + '1'",
        "{1: 2}",
        "[x for x in (1, 2)]",
        "f'{1}'",
        "1 if 1 else 2",
        "(1).__add__(1)",
    ],
)
def test_the_calculator_refuses_names_attributes_calls_outside_its_list_and_huge_numbers(expression: str) -> None:
    with pytest.raises(ToolInputError):
        calculate(expression)

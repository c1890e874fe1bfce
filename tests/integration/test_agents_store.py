"""The SQL run context on SQLite and on PostgreSQL (when FLEET_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from agents.errors import RunNotFound
from agents.models import Plan, StageOutput, Subtask, SubtaskResult, WorkflowRequest
from agents.ports import SubtaskState
from worker.agents.store import SqlRunStore
from worker.db import make_engine

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[SqlRunStore]:
    url = request.getfixturevalue("database_url" if request.param == "sqlite" else "postgres_url")
    engine = make_engine(url)
    yield SqlRunStore(engine)
    engine.dispose()


def test_a_run_moves_only_from_the_states_allowed_and_keeps_a_timeline(store: SqlRunStore) -> None:
    run_id = str(uuid.uuid4())
    store.create_run(run_id, WorkflowRequest(input="compute 1+1"), "agents")

    assert store.transition(run_id, "analyzing", frozenset({"pending"})) is True
    assert store.transition(run_id, "analyzing", frozenset({"pending"})) is False
    assert store.transition(run_id, "failed", frozenset({"analyzing"}), error="boom", actor="tester") is True

    record = store.get_run(run_id)
    assert (record.status, record.error) == ("failed", "boom")
    assert list(record.timeline) == ["pending", "analyzing", "failed"]
    with pytest.raises(RunNotFound):
        store.get_run("no-such-run")


def test_the_same_idempotency_key_finds_the_first_run(store: SqlRunStore) -> None:
    key = f"key-{uuid.uuid4().hex}"
    first, created = store.create_run(str(uuid.uuid4()), WorkflowRequest(input="a", idempotency_key=key), "agents")
    again, created_again = store.create_run(
        str(uuid.uuid4()), WorkflowRequest(input="a", idempotency_key=key), "agents"
    )

    assert (created, created_again) == (True, False)
    assert again.run_id == first.run_id


def test_stages_results_calls_and_snapshots_round_trip(store: SqlRunStore) -> None:
    run_id = str(uuid.uuid4())
    store.create_run(run_id, WorkflowRequest(input="x"), "agents")
    store.save_stage(run_id, StageOutput(stage="analyze", status="running"))
    store.save_stage(run_id, StageOutput(stage="analyze", status="succeeded", output={"plan": {"intent": "x"}}))
    store.save_result(run_id, SubtaskResult(subtask_id="s1", tool="t", version="v1", status="failed", error="e"))
    store.save_result(
        run_id, SubtaskResult(subtask_id="s1", tool="t", version="v1", status="succeeded", output={"v": 1})
    )
    store.save_snapshot(f"snap-{run_id}", run_id, {"run_id": run_id, "mode": "planner"})
    store.transition(run_id, "succeeded", frozenset({"pending"}), output={"answer": "1"})

    record = store.get_run(run_id)
    assert [(s.stage, s.status) for s in record.stages] == [("analyze", "succeeded")]
    assert [(r.subtask_id, r.status, r.output) for r in record.subtasks] == [("s1", "succeeded", {"v": 1})]
    assert store.claim_call(f"{run_id}:s1", run_id, "s1") == (1, None)
    store.complete_call(f"{run_id}:s1", {"done": True})
    assert store.claim_call(f"{run_id}:s1", run_id, "s1") == (2, {"done": True})
    assert store.get_snapshot(f"snap-{run_id}") == {"run_id": run_id, "mode": "planner", "status": "succeeded",
                                                    "output": {"answer": "1"}, "error": None}  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("database_url" if request.param == "sqlite" else "postgres_url"))


def test_the_sql_tool_connection_reads_but_cannot_write_even_past_the_parser(url: str) -> None:
    from agents.errors import ToolError
    from worker.agents.ports import ReadOnlySql

    runner = ReadOnlySql(url)
    try:
        assert runner.run_select("SELECT COUNT(*) AS n FROM agent_runs", 1000)[0]["n"] >= 0
        with pytest.raises(ToolError, match=r"(?i)read.only|readonly|not authorized"):
            runner.run_select("DELETE FROM agent_runs", 1000)
    finally:
        runner.engine.dispose()


def test_the_sql_tool_connection_refuses_a_table_outside_the_allow_list_even_past_the_parser(
    database_url: str,
) -> None:
    from agents.errors import ToolError
    from worker.agents.ports import ReadOnlySql

    runner = ReadOnlySql(database_url, tables=("agent_runs",))
    try:
        assert runner.run_select("WITH r AS (SELECT status FROM agent_runs) SELECT COUNT(*) AS n FROM r", 1000)
        for query in (
            "SELECT token_sha256 FROM api_keys",
            "SELECT sql FROM sqlite_master",
            "PRAGMA table_info(api_keys)",
        ):
            with pytest.raises(ToolError, match=r"not authorized|prohibited"):
                runner.run_select(query, 1000)
    finally:
        runner.engine.dispose()


def test_a_string_grown_by_concatenation_stops_at_the_size_limit_not_at_the_timeout(database_url: str) -> None:
    from agents.errors import ToolError
    from agents.tools.sql import check_select
    from worker.agents.ports import ReadOnlySql

    # Given CTEs that each repeat the string before eight times (16 bytes to 32 MB in seven steps): the parser
    # accepts them, there is no recursion
    steps = ["a(x) AS (SELECT '0123456789abcdef')"]
    steps += [
        f"{n}(x) AS (SELECT {' || '.join(['x'] * 8)} FROM {p})" for p, n in zip("abcdefg", "bcdefgh", strict=True)
    ]
    query = check_select(f"WITH {', '.join(steps)} SELECT length(x) AS size FROM h", ("agent_runs",), 10)
    runner = ReadOnlySql(database_url, max_bytes=100_000)
    try:
        # Then it fails on the length limit, with a timeout far longer than it needs (a bound for a hang)
        with pytest.raises(ToolError, match="exceed 100000 bytes"):
            runner.run_select(query, 60_000)
        # And the recursive doubling of the report is refused by the connection as by the parser
        doubling = "WITH RECURSIVE r(x) AS (SELECT 'ab' UNION ALL SELECT x || x FROM r) SELECT max(length(x)) FROM r"
        with pytest.raises(ToolError, match="not authorized"):
            runner.run_select(doubling, 60_000)
    finally:
        runner.engine.dispose()


def test_a_result_larger_than_the_limit_is_refused_not_returned(url: str) -> None:
    from agents.errors import ToolError
    from worker.agents.ports import ReadOnlySql

    runner = ReadOnlySql(url, max_bytes=2_000)

    def rows_of(size: int) -> str:
        return "SELECT v FROM (" + " UNION ALL ".join(f"SELECT '{c * size}' AS v" for c in "abc") + ") AS t"

    try:
        assert len(runner.run_select(rows_of(9), 1000)) == 3
        with pytest.raises(ToolError, match="result exceeds 2000 bytes"):
            runner.run_select(rows_of(900), 1000)
    finally:
        runner.engine.dispose()


def test_a_run_is_stalled_only_when_neither_it_nor_its_stages_nor_its_results_changed(store: SqlRunStore) -> None:
    from datetime import UTC, datetime, timedelta

    statuses = frozenset({"executing"})
    quiet, busy = str(uuid.uuid4()), str(uuid.uuid4())
    for run_id in (quiet, busy):
        store.create_run(run_id, WorkflowRequest(input="x"), "agents")
        store.transition(run_id, "executing", frozenset({"pending"}))
    before_result = datetime.now(UTC)
    store.save_result(busy, SubtaskResult(subtask_id="s1", tool="t", version="v1", status="succeeded"))
    later = datetime.now(UTC) + timedelta(seconds=1)

    found = {r.run_id for r in store.stalled_runs(statuses, before_result)}
    assert quiet in found and busy not in found  # a result after the cut-off is progress
    assert {quiet, busy} <= {r.run_id for r in store.stalled_runs(statuses, later)}
    assert quiet not in {r.run_id for r in store.stalled_runs(frozenset({"gated"}), later)}

    assert store.resumes(quiet) == 0
    store.note_resume(quiet, "executing")
    store.note_resume(quiet, "executing")
    assert store.resumes(quiet) == 2
    assert quiet not in {r.run_id for r in store.stalled_runs(statuses, later - timedelta(seconds=1))}


def test_a_run_recorded_again_under_its_own_id_is_the_first_one_not_an_error(store: SqlRunStore) -> None:
    run_id = str(uuid.uuid4())
    _first, created = store.create_run(run_id, WorkflowRequest(input="a"), "agents")
    store.transition(run_id, "analyzing", frozenset({"pending"}))

    again, created_again = store.create_run(run_id, WorkflowRequest(input="a"), "agents")  # the message redelivered

    assert (created, created_again) == (True, False)
    assert (again.run_id, again.status) == (run_id, "analyzing")


def test_a_subtask_state_is_the_runs_status_its_plan_and_the_results_that_subtask_needs(store: SqlRunStore) -> None:
    run_id = str(uuid.uuid4())
    store.create_run(run_id, WorkflowRequest(input="x"), "agents")
    assert store.subtask_state(run_id, "s2") == SubtaskState("pending", None, {})
    plan = Plan(intent="t", subtasks=(Subtask(id="s1", tool="t"), Subtask(id="s2", tool="t", depends_on=("s1",)),
                                      Subtask(id="s3", tool="t")))  # fmt: skip
    store.save_stage(run_id, StageOutput(stage="analyze", status="succeeded", output={"plan": plan.model_dump()}))
    results = [
        SubtaskResult(subtask_id=i, tool="t", version="v1", status="succeeded", output={"v": i}) for i in ["s1", "s3"]
    ]
    for result in results:
        store.save_result(run_id, result)
    store.transition(run_id, "executing", frozenset({"pending"}))

    assert store.subtask_state(run_id, "s2") == SubtaskState("executing", plan, {"s1": results[0]})
    assert store.subtask_state(run_id, "s3") == SubtaskState("executing", plan, {"s3": results[1]})
    with pytest.raises(RunNotFound):
        store.subtask_state("no-such-run", "s1")


def test_task_ids_and_snapshots_written_again_keep_one_row(store: SqlRunStore) -> None:
    run_id = str(uuid.uuid4())
    store.create_run(run_id, WorkflowRequest(input="x"), "agents")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    store.add_task_ids(run_id, ids[:2])
    store.add_task_ids(run_id, [*ids, ids[2]])  # a redelivered stage remembers its canvas again
    store.save_snapshot(f"snap-{run_id}", run_id, {"run_id": run_id, "v": 1})
    store.save_snapshot(f"snap-{run_id}", run_id, {"run_id": run_id, "v": 2})

    assert sorted(store.task_ids(run_id)) == sorted(ids)
    assert store.get_snapshot(f"snap-{run_id}")["v"] == 2


def test_a_conversations_turns_are_its_earlier_runs_oldest_first_with_their_last_value(store: SqlRunStore) -> None:
    from datetime import UTC, datetime, timedelta

    conversation = uuid.uuid4().hex
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for run_id, text in zip(ids, ["compute 21*2", "now double it", "add 1 to it"], strict=True):
        store.create_run(run_id, WorkflowRequest(input=text, conversation_id=conversation), "agents")
    store.create_run(str(uuid.uuid4()), WorkflowRequest(input="elsewhere", conversation_id="other"), "agents")
    store.transition(
        ids[0], "succeeded", frozenset({"pending"}), output={"answer": "21*2 = 42", "results": {"s1": {"value": "42"}}}
    )
    third = store.get_run(ids[2])

    turns = store.conversation_turns(conversation, third.created_at or datetime.now(UTC))

    assert [t.run_id for t in turns] == ids[:2]
    assert (turns[0].answer, turns[0].value, turns[1].value) == ("21*2 = 42", "42", None)
    later = datetime.now(UTC) + timedelta(days=1)
    assert [t.run_id for t in store.conversation_turns(conversation, later, limit=2)] == ids[1:]

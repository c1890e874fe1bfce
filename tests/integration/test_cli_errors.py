"""Every `agent` command fed the wrong thing: one clear line on stderr, the documented exit code, no traceback.

The installed console script runs as a subprocess, as a user types it; the exit codes are those of
docs/operations.md (1 the work found problems, 2 bad arguments, 3 broker, database or workers unavailable).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import ROOT, WorkerProcess, run_agent, wait_for
from worker.fleet_status import queue_depths
from worker.redis_server import free_port

pytestmark = pytest.mark.integration

USAGE, UNAVAILABLE = 2, 3
UNKNOWN_RUN = "00000000-0000-0000-0000-000000000000"


def assert_one_error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The command exited with `code`, printed no traceback, and said why in one line on stderr."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == code, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(fleet_worker: WorkerProcess) -> str:
    """The id of a workflow run that succeeded (approve, reject and cancel no longer apply to it)."""
    done = run_agent("run", "compute 6*7", "--json", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(json.loads(done.stdout)["run_id"])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Wrong files: one that does not exist, a binary one, a directory; and a good file of requests."""
    folder = tmp_path_factory.mktemp("wrong-files")
    binary = folder / "events.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    requests = folder / "requests.txt"
    requests.write_text("compute 1+1\n")
    return {"missing": str(folder / "missing"), "binary": str(binary), "folder": str(folder), "requests": str(requests)}


# (arguments, exit code); FINISHED, MISSING, BINARY, FOLDER and REQUESTS are filled in by the test.
WRONG_ARGUMENTS: list[tuple[list[str], int]] = [
    (["run", ""], USAGE),
    (["run"], USAGE),
    (["run", "compute 1+1", "--mode", "everything"], USAGE),
    (["run", "compute 1+1", "--profile", "nope"], USAGE),
    (["run", "compute 1+1", "-o", "no-equals-sign"], USAGE),
    (["run", "compute 1+1", "--timeout", "soon"], USAGE),
    (["status", UNKNOWN_RUN], USAGE),
    (["status", "--timeout", "soon"], USAGE),
    (["cancel", UNKNOWN_RUN], USAGE),
    (["cancel", "FINISHED"], USAGE),
    (["approve", UNKNOWN_RUN], USAGE),
    (["approve", "FINISHED"], USAGE),
    (["reject", "FINISHED", "--reason", "too late"], USAGE),
    (["replay", UNKNOWN_RUN], USAGE),
    (["replay", "FINISHED", "--from-stage", "nowhere"], USAGE),
    (["batch", "--input", "MISSING", "--output", "MISSING"], USAGE),
    (["batch", "--input", "BINARY", "--output", "FOLDER"], USAGE),
    (["batch", "--input", "REQUESTS", "--output", "MISSING/out.jsonl"], USAGE),
    (["eval", "--samples", "MISSING"], USAGE),
    (["tool", "list", "--colour"], USAGE),
    (["tool", "test", "no.such_tool", "--input", "{}"], USAGE),
    (["tool", "test", "math.calculate"], USAGE),
    (["tool", "test", "math.calculate", "--input", "{expression"], USAGE),
    (["tool", "test", "math.calculate", "--input", "[1, 2]"], USAGE),
    (["tool", "test", "math.calculate", "--input", '{"expression": "1/0"}'], USAGE),
    (["tool", "test", "math.calculate", "--input", '{"expression": "__import__(1)"}'], USAGE),
    (["tool", "test", "ledger.quick_run", "--input", "{}"], USAGE),
    (["tool", "test", "sql.query", "--input", '{"query": "DROP TABLE agent_runs"}'], USAGE),
    (["ledger", "generate", "--events", "0"], USAGE),
    (["ledger", "submit", "MISSING"], USAGE),
    (["ledger", "submit", "BINARY", "--wait"], USAGE),
    (["ledger", "quick-run", "FOLDER"], USAGE),
    (["ledger", "show", "never-sent"], USAGE),
    (["ledger", "versions", "--csv"], USAGE),
    (["report", "--date", "2026-13-45"], USAGE),
    (["briefing", "--hours", "0"], USAGE),
    (["keys", "create", "--name", "ci", "--scope", "everything"], USAGE),
    (["keys", "create", "--scope", "run"], USAGE),
    (["keys", "create", "--name", " ", "--scope", "run"], USAGE),
    (["keys", "revoke", "no-such-key"], USAGE),
    (["up", "--queues", "agents,mail"], USAGE),
    (["up", "--workers", "0"], USAGE),
    (["up", "--api-port", "70000"], USAGE),
    (["api", "--port", "eighty"], USAGE),
    (["api", "--port", "0"], USAGE),
    (["db", "downgrade"], USAGE),
]


@pytest.mark.parametrize(("args", "code"), WRONG_ARGUMENTS, ids=[" ".join(a)[:60] for a, _ in WRONG_ARGUMENTS])
def test_a_command_fed_the_wrong_thing_says_why_in_one_line(
    args: list[str], code: int, finished_run: str, files: dict[str, str]
) -> None:
    names = {name.upper(): path for name, path in files.items()} | {"FINISHED": finished_run}
    # A placeholder may start an argument: MISSING/out.jsonl is a file in a folder that does not exist.
    args = [re.sub(r"^[A-Z]+", lambda m: names.get(m.group(0), m.group(0)), arg) for arg in args]
    done = run_agent(*args, timeout=120)
    assert_one_error_line(done, code)


def test_chat_with_an_unknown_profile_says_why(fleet_worker: WorkerProcess) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "agent"), "chat", "--profile", "nope"],
        input="compute 1+1\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "unknown profile 'nope'" in assert_one_error_line(done, USAGE)


def _down_broker() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["run", "compute 1+1", "--timeout", "5"], {"FLEET_BROKER_URL": "DOWN"}, UNAVAILABLE),
        (["ledger", "submit", "EVENTS", "--wait"], {"FLEET_BROKER_URL": "DOWN"}, UNAVAILABLE),
        (["ledger", "quick-run", "EVENTS"], {"FLEET_BROKER_URL": "DOWN"}, UNAVAILABLE),
        (["db", "upgrade"], {"FLEET_DATABASE_URL": "mysql://fleet@db/fleet"}, UNAVAILABLE),
        (["ledger", "versions"], {"FLEET_CONFIG": "MISSING"}, UNAVAILABLE),
        (["ledger", "versions"], {"FLEET_DATABASE_URL": "EMPTY_DB"}, UNAVAILABLE),
        (["keys", "list"], {"FLEET_TIMEZONE": "Mars/Olympus"}, UNAVAILABLE),
    ],
    ids=[
        "run, broker down",
        "submit, broker down",
        "quick-run, broker down",
        "bad database URL",
        "missing FLEET_CONFIG",
        "database not migrated",
        "bad time zone",
    ],
)
def test_a_command_without_its_broker_database_or_settings_exits_3_in_one_line(
    args: list[str], env: dict[str, str], code: int, redis_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "e-1"}\n')
    names = {
        "DOWN": _down_broker(),
        "EVENTS": str(events),
        "MISSING": str(tmp_path / "missing.yaml"),
        "EMPTY_DB": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    done = run_agent(*[names.get(a, a) for a in args], env={k: names.get(v, v) for k, v in env.items()}, timeout=120)
    assert_one_error_line(done, code)


TOOL_NAMES = st.sampled_from(["math.calculate", "text.summarize", "sql.query", "system.status", "math.calculate:v9"])
# What argv can carry: any text but NUL and lone surrogates.
ARGV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
TOOL_ARGS = st.dictionaries(
    st.sampled_from(["expression", "text", "query", "max_sentences"]), st.one_of(ARGV_TEXT, st.integers())
).map(json.dumps)


@settings(max_examples=12, deadline=None)
@given(name=st.one_of(TOOL_NAMES, ARGV_TEXT), raw=st.one_of(ARGV_TEXT, TOOL_ARGS))
def test_tool_test_with_any_name_and_input_never_ends_in_a_traceback(name: str, raw: str, database_url: str) -> None:
    done = run_agent("tool", "test", name, "--input", raw, timeout=120)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.returncode in (0, USAGE), done.stderr
    if done.returncode:
        assert_one_error_line(done, USAGE)


def test_agent_run_with_no_worker_exits_3_within_its_timeout_and_the_run_never_runs(
    redis_server, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    # Given a broker no worker consumes (a Redis database of its own)
    broker = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + "/5"
    env = {"FLEET_BROKER_URL": broker, "FLEET_RESULT_BACKEND": broker}
    timeout = 3
    # When a run is asked for with --timeout
    started = time.monotonic()
    done = run_agent("run", "compute 1+1", "--timeout", str(timeout), env=env, timeout=120)
    elapsed = time.monotonic() - started
    # Then it ends with exit 3 and one line saying so, instead of waiting minutes: the bound guards against a
    # hang (the live view used to wait 300 s); it allows for the interpreter's start on a loaded machine.
    line = assert_one_error_line(done, UNAVAILABLE)
    assert elapsed < timeout + 2 + 15, elapsed
    assert "no worker started run" in line and "cancelled" in line
    run_id = re.search(r"run ([0-9a-f-]{36})", line).group(1)  # type: ignore[union-attr]
    # And the run is recorded as cancelled, so a worker that starts later takes its message and ends it at once
    worker = WorkerProcess(queues="agents", env=env).start()
    try:
        client = redis.Redis.from_url(broker)
        wait_for(lambda: queue_depths(client, ("agents",))["agents"] == 0, timeout=90, what="the queued run taken")
    finally:
        worker.stop()
    record = json.loads(run_agent("status", run_id, "--json", env=env).stdout)
    assert record["status"] == "cancelled" and record["stages"] == [], record


def test_chat_with_no_worker_exits_3_after_its_timeout_and_cancels_the_run(redis_server, database_url: str) -> None:  # type: ignore[no-untyped-def]
    broker = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + "/6"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "agent"), "chat", "--timeout", "2"],
        input="compute 1+1\nnever asked\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "FLEET_BROKER_URL": broker, "FLEET_RESULT_BACKEND": broker},
    )
    line = assert_one_error_line(done, UNAVAILABLE)
    assert "no worker started run" in line and "cancelled" in line


def test_agent_run_that_a_worker_finishes_in_time_exits_0(fleet_worker: WorkerProcess) -> None:
    done = run_agent("run", "compute 2+3", "--timeout", "120", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2+3 = 5" in done.stdout and "Traceback" not in done.stderr


def test_an_unknown_key_id_is_named_in_the_error(database_url: str) -> None:
    line = assert_one_error_line(run_agent("keys", "revoke", f"k{uuid.uuid4().hex[:8]}", timeout=60), USAGE)
    assert "no API key" in line

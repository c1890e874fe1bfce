"""The `agent ledger` commands and the producer client, against the session's real worker."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.ledger_cases import event
from tests.support import run_agent

pytestmark = pytest.mark.integration


def test_quick_run_summarises_and_gates_on_rejections(fleet_worker, session_dir: Path) -> None:
    # Given a generated stream with four injected faults (three rejections, one redelivery)
    stream = session_dir / f"stream-{uuid.uuid4().hex[:6]}.jsonl"
    generated = run_agent("ledger", "generate", "--events", "200", "--faults", "4", "--seed", "42")
    assert generated.returncode == 0, generated.stderr
    stream.write_text(generated.stdout)
    # When it is quick-run
    done = run_agent("ledger", "quick-run", str(stream), "--json")
    # Then the summary counts the rejections and the command fails the gate
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["events"] == 200 and summary["by_status"]["rejected"] == 3
    assert summary["by_status"]["duplicate"] == 1 and summary["ttd_p50_ms"] > 0
    assert summary["peak_worker_memory_kb"] > 0
    # And each event's snapshot can be shown, and the versions table counts them
    first = json.loads(generated.stdout.splitlines()[0])["event_id"]
    shown = run_agent("ledger", "show", first)
    assert json.loads(shown.stdout)["result"]["status"] == "accepted"
    versions = json.loads(run_agent("ledger", "versions", "--json").stdout)
    assert any(row["api_version"] == "v1" and row["statuses"]["accepted"] >= 196 for row in versions)


def test_a_clean_stream_passes_the_gate(fleet_worker, session_dir: Path) -> None:
    stream = session_dir / f"clean-{uuid.uuid4().hex[:6]}.jsonl"
    stream.write_text(run_agent("ledger", "generate", "--events", "60", "--seed", "43").stdout)
    done = run_agent("ledger", "quick-run", str(stream))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "success rate 100.0%" in done.stdout


def test_the_client_sends_with_only_a_broker_url(fleet_worker) -> None:
    from ledger.client import submit

    body = event(
        f"cl-{uuid.uuid4().hex[:6]}", "account_opened", {"account": f"cl-{uuid.uuid4().hex[:6]}", "currency": "EUR"}
    )
    [sent] = submit([body], broker_url=os.environ["FLEET_BROKER_URL"])
    assert sent.result is not None and sent.result.get(timeout=60)["status"] == "accepted"


def test_submit_wait_prints_a_table_and_fails_the_gate_when_an_event_is_rejected(
    fleet_worker, session_dir: Path
) -> None:
    # Given a stream with injected faults (three rejections, one redelivery)
    stream = session_dir / f"submit-{uuid.uuid4().hex[:6]}.jsonl"
    stream.write_text(run_agent("ledger", "generate", "--events", "40", "--faults", "4", "--seed", "44").stdout)
    # When it is submitted and waited for
    done = run_agent("ledger", "submit", str(stream), "--wait")
    # Then the command fails the gate and prints a table by outcome, rejections by their deciding code
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {
        cells[0]: int(cells[1])
        for line in done.stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip("│┃ ").split("│")]) == 2 and cells[1].isdigit()
    }
    rejected = {name: count for name, count in rows.items() if name.startswith("rejected: ")}
    assert sum(rejected.values()) == 3 and rows["duplicates"] == 1 and rows["skipped"] == 0, done.stdout
    assert rows["accepted"] == 40 - 3 - 1
    assert "{'" not in done.stdout and "rejected: g44-" in done.stdout
    # And --json gives the results with the same counts, and the same exit code
    again = run_agent("ledger", "submit", str(stream), "--wait", "--json")
    assert again.returncode == 0, again.stderr  # a redelivered stream is all duplicates: nothing newly rejected
    body = json.loads(again.stdout)
    assert body["summary"] == {"accepted": 0, "rejected": {}, "duplicates": 40, "skipped": 0}
    assert [r["status"] for r in body["results"]] == ["duplicate"] * 40


def test_submit_wait_json_counts_rejections_by_code_and_exits_1(fleet_worker, session_dir: Path) -> None:
    account = f"sj-{uuid.uuid4().hex[:6]}"
    good = event(f"{account}-open", "account_opened", {"account": account, "currency": "EUR"})
    float_amount = event(
        f"{account}-float",
        "transaction_created",
        {"transaction_id": f"{account}-t1", "sender": account, "receiver": account, "amount": 5.5, "currency": "EUR"},
    )
    stream = session_dir / f"{account}.jsonl"
    stream.write_text("".join(json.dumps(e) + "\n" for e in (good, float_amount)))
    done = run_agent("ledger", "submit", str(stream), "--wait", "--json")
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    assert body["summary"] == {"accepted": 1, "rejected": {"malformed_payload": 1}, "duplicates": 0, "skipped": 0}
    assert [r["event_id"] for r in body["results"]] == [good["event_id"], float_amount["event_id"]]

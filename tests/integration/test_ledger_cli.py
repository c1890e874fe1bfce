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

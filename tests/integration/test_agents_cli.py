"""The agents' `agent` commands, driven in process against the session's Redis and worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from tests.support import ROOT, WorkerProcess

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_agent_run_prints_the_answer_the_stages_with_timings_and_the_verdicts(fleet_worker: WorkerProcess) -> None:
    done = runner.invoke(
        app, ["run", "compute (12+30)*2 and summarise: Celery runs tasks. Redis keeps them. Flowers bloom."]
    )

    assert done.exit_code == 0, done.output
    assert "(12+30)*2 = 84" in done.output
    for expected in (
        "analyze",
        "gate",
        "execute",
        "verify",
        "approve (priority 5)",
        "transparency=pass",
        "s1 math.calculate succeeded",
    ):
        assert expected in done.output


def test_agent_run_json_gives_the_run_record_and_a_failed_run_exits_1(fleet_worker: WorkerProcess) -> None:
    done = runner.invoke(app, ["run", "compute 1/0", "--json"])

    assert done.exit_code == 1
    assert json.loads(done.output)["status"] == "failed"


def test_agent_replay_of_a_local_run_prints_identical(fleet_worker: WorkerProcess) -> None:
    record = json.loads(runner.invoke(app, ["run", "compute 6*7", "--json"]).output)

    done = runner.invoke(app, ["replay", record["run_id"], "--from-stage", "gate"])

    assert done.exit_code == 0, done.output
    assert f"replay of {record['run_id']} from gate: identical" in done.output


def test_agent_tool_list_and_tool_test() -> None:
    listed = json.loads(runner.invoke(app, ["tool", "list", "--json"]).output)
    tested = runner.invoke(app, ["tool", "test", "math.calculate", "--input", '{"expression": "2**8"}'])
    refused = runner.invoke(app, ["tool", "test", "math.calculate", "--input", '{"expression": "__import__(1)"}'])

    assert {t["name"] for t in listed} >= {
        "math.calculate",
        "sql.query",
        "text.summarize",
        "ledger.quick_run",
        "system.status",
    }
    assert json.loads(tested.output)["output"]["value"] == "256"
    assert refused.exit_code != 0 and "may be called" in str(refused.exception)


def test_agent_batch_writes_one_result_per_line(fleet_worker: WorkerProcess, tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("compute 1+1\n2*3 계산해줘\ntell me a joke\n", encoding="utf-8")

    done = runner.invoke(
        app, ["batch", "--input", str(queries), "--output", str(tmp_path / "out.jsonl"), "--parallel", "2"]
    )

    results = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["status"] for r in results] == ["succeeded", "succeeded", "rejected"]
    assert done.exit_code == 1 and "2/3 succeeded" in done.output


def test_agent_eval_reports_its_metrics_and_writes_per_sample_results(
    fleet_worker: WorkerProcess, tmp_path: Path
) -> None:
    samples = tmp_path / "eval"
    shutil.copytree(ROOT / "samples" / "eval" / "inputs", samples / "inputs")
    shutil.copytree(ROOT / "samples" / "eval" / "expected", samples / "expected")

    done = runner.invoke(app, ["eval", "--samples", str(samples), "--json"])

    summary = json.loads(done.output)
    metrics = summary["metrics"]
    assert metrics["samples"] >= 30
    assert metrics["schema_compliance_pct"] == 100.0 and metrics["json_error_rate"] == 0.0
    assert metrics["accuracy"] == 1.0, [
        json.loads(x)
        for x in (Path(summary["results_dir"]) / "samples.jsonl").read_text().splitlines()
        if not json.loads(x)["correct"]
    ]
    assert metrics["tool_selection_f1"] == 1.0 and metrics["verifier_pass_rate"] == 1.0
    assert metrics["latency_p95_ms"] >= metrics["latency_p50_ms"] > 0
    assert len((Path(summary["results_dir"]) / "samples.jsonl").read_text().splitlines()) == metrics["samples"]


def test_agent_chat_answers_each_line_until_an_empty_one(fleet_worker: WorkerProcess) -> None:
    done = runner.invoke(app, ["chat"], input="compute 6*7\n2+3 계산해줘\n\nnever asked\n")

    assert done.exit_code == 0, done.output
    assert "(succeeded): 6*7 = 42" in done.output and "(succeeded): 2+3 = 5" in done.output
    assert "never asked" not in done.output


def test_agent_status_with_a_run_id_prints_that_run(fleet_worker: WorkerProcess) -> None:
    record = json.loads(runner.invoke(app, ["run", "compute 6*7", "--json"]).output)

    done = runner.invoke(app, ["status", record["run_id"], "--json"])

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["output"]["results"]["s1"]["value"] == "42"


def test_agent_chat_keeps_one_conversation_until_new_and_shows_its_history(fleet_worker: WorkerProcess) -> None:
    lines = ["compute 21*2", "now double it", "그 결과에 3을 더해", "/history", "/new", "double it", ""]

    done = runner.invoke(app, ["chat"], input="\n".join(lines) + "\n")

    assert done.exit_code == 0, done.output
    assert "(succeeded): 42*2 = 84" in done.output and "(succeeded): 84+3 = 87" in done.output
    assert "1. you: compute 21*2" in done.output and "3. you: 그 결과에 3을 더해" in done.output
    # After /new the earlier result is out of reach: nothing to double
    assert done.output.rstrip().splitlines()[-1].startswith("agent (rejected): no tool fits")

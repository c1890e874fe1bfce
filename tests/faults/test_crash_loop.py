"""Workers SIGKILLed every few seconds while a ledger stream and agent workflows are in flight: nothing lost, nothing twice."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.services import agents as service
from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import (
    broker_holds,
    fleet_config,
    lines,
    segments,
    stored_balances,
    stored_statuses,
)
from tests.support import WorkerProcess, wait_for
from worker import ownership

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.patches, pytest.mark.timeout(600)]
EVENTS = 20_000
SEGMENT = 1_000
# One segment in four mixes single events (sent concurrently: ordering and duplicates under kills) with a small
# ordered batch; the others go as one batch each, the way a bulk producer sends, so the run stays short.
MIXED_EVERY = 4
WORKFLOWS = 50
# Workflows go in with the first segments, ten at a time, so that kills keep finding some of them in flight.
WORKFLOW_WAVES = 5
KILL_EVERY_S = 3.0
# However fast the fleet gets, kills land all along the stream: segment n waits for n // 4 kills first.
SEGMENTS_PER_KILL = 4
# A dead worker's messages come back by themselves once its heartbeat is this old (30 s in production); the visibility
# timeout stays at its default and nothing here calls kombu's restore.
LOST_AFTER_S = 5
# Single events of one segment arrive in any order: timestamps may then regress by up to the stream's span.
LEDGER_YAML = "ledger:\n  batch_chunk_size: 50\n  regress_tolerance_seconds: 7200\n"
# The sweep resumes a workflow with no progress for 10 s (600 s in production, where Beat sends it every minute;
# here the test sends it every 2 s while it waits for the workflows to end).
AGENTS_YAML = (
    "agents:\n  queue: {queue}\n  tool_modules: [tests.agent_tools]\n  subtask_time_limit_s: 5\n  stall_after_s: 10\n"
)
SWEEP_EVERY_S = 2.0


class CrashLoop:
    """Kills one of the workers (in turn) with SIGKILL and starts it again, every few seconds: KILL_EVERY_S after
    the previous victim is consuming again."""

    def __init__(self, workers: list[WorkerProcess], app: Any) -> None:
        self.workers, self.app, self.kills = workers, app, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.client = redis.Redis.from_url(app.conf.broker_url)
        self.pending: dict[str, float] = {}  # held-key pattern of a killed process -> when it was killed
        self.recovery_s: list[float] = []  # per kill that left messages held: kill -> every one given back

    def _loop(self) -> None:
        while not self.stopped.wait(KILL_EVERY_S):
            victim = self.workers[self.kills % len(self.workers)]
            assert victim.process is not None
            pattern = f"{ownership.HELD}{victim.hostname}#{victim.process.pid}.*"
            victim.kill()
            killed_at = time.monotonic()
            if any(True for _ in self.client.scan_iter(match=pattern)):
                self.pending[pattern] = killed_at
            self.kills += 1
            self._restart(victim)

    def _watch(self) -> None:
        while not self.stopped.wait(0.1):
            for pattern, killed_at in list(self.pending.items()):
                if not any(True for _ in self.client.scan_iter(match=pattern)):
                    self.recovery_s.append(time.monotonic() - killed_at)
                    del self.pending[pattern]

    @staticmethod
    def _restart(victim: WorkerProcess) -> None:
        """Start it again and wait until it consumes: on a loaded machine a start can outlast the kill period, and
        workers killed before they ever work again would prove nothing (and take the run ten times as long)."""
        seen = victim.log_path.stat().st_size if victim.log_path.exists() else 0
        victim.start()

        def ready() -> bool:
            with victim.log_path.open("rb") as log:
                log.seek(seen)
                return f"{victim.hostname} ready.".encode() in log.read()

        wait_for(ready, timeout=90, interval=0.2, what=f"{victim.name} ready again")

    def __enter__(self) -> CrashLoop:
        self.thread.start()
        self.watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(100)  # longer than a restart may wait: no start races the workers' final stop
        self.watcher.join(5)

    def wait_recovered(self, timeout: float) -> None:
        """Wait until the messages of every killed process are back (they are timed by the watcher)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            for pattern, killed_at in list(self.pending.items()):
                if not any(True for _ in self.client.scan_iter(match=pattern)):
                    self.recovery_s.append(time.monotonic() - killed_at)
                    del self.pending[pattern]
            time.sleep(0.1)


@dataclass
class Sender:
    """Sends messages with known ids; resends those the broker lost (see `settle`)."""

    app: Any
    queue: str
    logs: list[Path]
    sent: dict[str, tuple[str, Any]] = field(default_factory=dict)
    vanished: list[str] = field(default_factory=list)

    def send(self, name: str, body: Any) -> None:
        """Send one `ledger.quick_run` (an event) or `ledger.quick_run_batch` (a list)."""
        task_id = str(uuid.uuid4())
        self.sent[task_id] = (name, body)
        self.app.send_task(name, args=[body], queue=self.queue, priority=5, task_id=task_id)

    def settle(self, database_url: str, prefix: str, ids: set[str]) -> None:
        """Wait until every event has a result. A message that is in no queue, not held, never received by any
        worker and whose events have no result vanished (what kombu's BRPOP window did, docs/RELIABILITY.md):
        count it and send it again, as a producer reconciling would; the test then fails on the count."""
        progress = {"stored": -1, "since": time.monotonic()}

        def done() -> bool:
            stored = stored_statuses(database_url, prefix).keys()
            if ids <= stored:
                return True
            if len(stored) != progress["stored"]:
                progress.update(stored=len(stored), since=time.monotonic())
            elif time.monotonic() - progress["since"] > 15 and broker_holds(self.app, self.queue) == 0:
                self._resend_lost(ids - stored)
                progress["since"] = time.monotonic()
            return False

        wait_for(done, timeout=150, interval=0.5, what=f"{len(ids)} events stored")

    def _resend_lost(self, missing: set[str]) -> None:
        received = "".join(log.read_text(errors="replace") for log in self.logs if log.exists())
        for task_id, (name, body) in list(self.sent.items()):
            events = body if isinstance(body, list) else [body]
            if {e["event_id"] for e in events} & missing:
                assert task_id not in received, f"{task_id} was received, yet its events have no result"
                self.vanished.append(task_id)
                del self.sent[task_id]
                self.send(name, body)


def _workflows(queue: str, count: int, first: int) -> list[str]:
    subtasks = [
        {"id": "e1", "tool": "test.effect", "args": {"hold_ms": 300}},
        {"id": "c1", "tool": "math.calculate", "args": {"expression": "6*7"}},
        {"id": "e2", "tool": "test.effect", "args": {"hold_ms": 100}},
    ]
    return [
        service.run(f"crash loop {i}", options={"queue": queue, "subtasks": subtasks}, wait=False)["run_id"]
        for i in range(first, first + count)
    ]


# Why a run rests in a non-terminal state, as far as the tests could tell (docs/RELIABILITY.md, open defects).
STUCK = {
    "executing": "the group barrier never ran, and the sweep did not resume it",
    "pending": "recorded, its stages never sent, and the sweep did not resume it",
}


def unfinished_workflows(run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Run id -> record of every workflow that did not end `succeeded`."""
    records = {r: service.run_status(r) for r in run_ids}
    return {r: record for r, record in records.items() if record["status"] != "succeeded"}


def test_a_stream_and_workflows_survive_workers_killed_every_few_seconds(
    celery_app, database_url: str, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given two workers and a stream of events cut into batches and single events
    prefix = f"loop{uuid.uuid4().hex[:6]}"
    queues = f"ledger-{prefix},agents-{prefix}"
    folder = session_dir / prefix
    env = {
        **fleet_config(folder, LEDGER_YAML + AGENTS_YAML.format(queue=f"agents-{prefix}")),
        "FLEET_WORKER_LOST_AFTER_S": str(LOST_AFTER_S),
    }
    stream = [item["event"] for item in generate(EVENTS, 0, seed=17, now=datetime.now(UTC), prefix=prefix)]
    workers = [
        WorkerProcess(queues=queues, name=f"{prefix}-{n}", env=env, log_path=folder / f"worker-{n}.out").start(
            celery_app
        )
        for n in "ab"
    ]
    sent = {"batches": 0, "singles": 0}
    started = time.monotonic()
    sender = Sender(celery_app, f"ledger-{prefix}", [w.log_path for w in workers])
    try:
        # When one of them is SIGKILLed every few seconds and restarted while everything is in flight
        with CrashLoop(workers, celery_app) as loop:
            run_ids: list[str] = []
            for number, segment in enumerate(segments(stream, SEGMENT, MIXED_EVERY)):
                due = number // SEGMENTS_PER_KILL
                wait_for(lambda due=due: loop.kills >= due, timeout=120, what=f"kill {due}")
                if number < WORKFLOW_WAVES:
                    wave = WORKFLOWS // WORKFLOW_WAVES
                    run_ids += _workflows(f"agents-{prefix}", wave, first=number * wave)
                for batch in segment.batches:
                    sender.send("ledger.quick_run_batch", batch)
                for event in segment.singles:
                    sender.send("ledger.quick_run", event)
                sent["batches"] += len(segment.batches)
                sent["singles"] += len(segment.singles)
                sender.settle(database_url, prefix, segment.event_ids)
            kills_during_stream = loop.kills
            stream_s = time.monotonic() - started
        swept = {"at": 0.0}

        def workflows_ended() -> bool:
            if time.monotonic() - swept["at"] > SWEEP_EVERY_S:  # what Beat does every minute
                celery_app.send_task("agents.sweep", queue=f"agents-{prefix}", priority=1)
                swept["at"] = time.monotonic()
            return all(service.run_status(r)["status"] in service.TERMINAL_STATUSES for r in run_ids)

        with contextlib.suppress(AssertionError):  # a stuck run is counted below, not a timeout here
            wait_for(workflows_ended, timeout=120, interval=0.5, what="every workflow in a terminal state")
        loop.wait_recovered(LOST_AFTER_S + 30)  # the last kills' messages, timed while a worker still runs
    finally:
        for worker in workers:
            worker.stop()

    # Then every event has exactly one result, the one the stream gives when run once, in order
    memory = MemoryStore()
    config = LedgerConfig(regress_tolerance_seconds=7200)
    expected = {r["event_id"]: r["status"] for r in run(stream, memory, config, datetime.now(UTC))}
    stored = stored_statuses(database_url, prefix)
    lost = sorted(expected.keys() - stored.keys())
    different = sorted(i for i in expected if i in stored and stored[i] != expected[i])
    # And every shadow balance equals the balance computed independently from the stream
    balances = stored_balances(database_url, prefix)
    wrong = sorted(a for a, acc in memory.ledger.accounts.items() if balances.get(a) != acc.balance)
    # And every workflow ended, each side effect applied once although some were called again
    statuses = [service.run_status(r)["status"] for r in run_ids]
    resumed = sum(
        1 for r in run_ids if any(e["type"] == "run_resumed" for _id, e in service.progress(r, timeout_s=0.2))
    )
    effects = lines(folder / "effects.log")
    twice = len(effects) - len(set(effects))
    p50 = statistics.median(loop.recovery_s) if loop.recovery_s else 0.0
    worst = max(loop.recovery_s, default=0.0)
    print(
        f"\ncrash loop: {EVENTS} events ({sent['batches']} batches, {sent['singles']} singles), {WORKFLOWS} workflows,"
        f" {kills_during_stream} kills in {stream_s:.0f} s, {len(sender.vanished)} messages vanished and resent,"
        f" recovery after a kill p50 {p50:.1f} s, max {worst:.1f} s ({len(loop.recovery_s)} kills left messages held,"
        f" {len(loop.pending)} never given back); stored {len(stored)}, lost {len(lost)}, status differs {len(different)},"
        f" balances wrong {len(wrong)}, workflows {statuses.count('succeeded')} succeeded ({resumed} resumed by the sweep), effects {len(effects)}"
        f" applied, {twice} twice, {len(lines(folder / 'calls.log')) - len(effects)} repeated calls absorbed"
    )
    assert kills_during_stream >= EVENTS // SEGMENT // SEGMENTS_PER_KILL - 1
    assert sender.vanished == []  # taken and recorded in one Redis call: no window
    assert loop.pending == {} and worst <= LOST_AFTER_S + 10
    assert lost == [] and len(stored) == len(expected) == EVENTS
    assert different == []
    assert wrong == [] and len(balances) == len(memory.ledger.accounts)
    assert twice == 0 and set(effects) <= {f"{r}:{s}" for r in run_ids for s in ("e1", "e2")}
    unfinished = unfinished_workflows(run_ids)
    reasons = sorted(f"{rec['status']}: {rec.get('error') or STUCK.get(rec['status'])}" for rec in unfinished.values())
    assert unfinished == {}, f"{len(unfinished)} of {WORKFLOWS} workflows did not succeed after kills: {reasons}"
    assert sorted(effects) == sorted(f"{r}:{s}" for r in run_ids for s in ("e1", "e2"))

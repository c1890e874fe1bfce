"""The run list's text search finds exactly the runs whose input holds the text, whatever the text holds
(LIKE's own % and _, backslashes, quotes, Korean), for runs written before and after agents_0003."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.services.runs import RunFilter, search
from worker.agents.models import AgentRun
from worker.db import session_scope

pytestmark = pytest.mark.integration

ALPHABET = st.sampled_from(list("ab%_\\'\"환불 xX"))
INPUTS = ["a%b", "a_b", "axb", "환불 AB", "x\\y", 'it\'s "quoted"', "100% off_", "plain text"]


@pytest.fixture(scope="module")
def stored(database_url: str) -> str:
    """Runs of one owner of their own, half with input_text (written by a current worker), half without."""
    owner = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    with session_scope() as session:
        for index, text in enumerate(INPUTS * 2):
            session.add(AgentRun(
                run_id=f"{owner}-{index}", status="succeeded", owner=owner, queue="agents", priority=5,
                request={"input": text, "mode": "planner"}, input_text=text if index < len(INPUTS) else None,
                timeline={}, created_at=now - timedelta(seconds=index), updated_at=now,
            ))  # fmt: skip
    return owner


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.text(ALPHABET, min_size=1, max_size=4))
def test_a_text_search_finds_exactly_the_runs_holding_the_text(stored: str, needle: str) -> None:
    found = {r["run_id"] for r in search(RunFilter(owner=stored, text=needle), 100)["runs"]}
    expected = {f"{stored}-{i}" for i, text in enumerate(INPUTS * 2) if needle.lower() in text.lower()}
    assert found == expected

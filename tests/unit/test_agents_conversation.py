"""Conversations over in-memory ports: each run sees the earlier turns, bounded and summarised, and the `local`
planner resolves "double it" or "그 결과에 3을 더해" to the earlier result."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import runner
from agents.conversation import Context, Turn, bound, resolve
from agents.memory import MemoryCache, MemoryEvents, MemoryStore
from agents.models import WorkflowRequest
from agents.profiles import LocalProfile
from agents.replay import comparable, replay, run_inline
from agents.tools import default_registry


@pytest.fixture
def ports() -> runner.Ports:
    return runner.Ports(store=MemoryStore(), events=MemoryEvents(), registry=default_registry(),
                        profiles=lambda _name: LocalProfile(), cache=MemoryCache())  # fmt: skip


def _turns(ports: runner.Ports, *texts: str, conversation: str = "c1") -> list[str]:
    answers = []
    for text in texts:
        run_id = f"{conversation}-{len(ports.store.runs)}"  # type: ignore[attr-defined]
        ports.store.create_run(run_id, WorkflowRequest(input=text, conversation_id=conversation), "agents")
        record = run_inline(run_id, ports)
        assert record.status == "succeeded", record.error
        answers.append((record.output or {})["answer"])
    return answers


@pytest.mark.parametrize(
    ("texts", "answers"),
    [
        (("compute 21*2", "now double it"), ["21*2 = 42", "42*2 = 84"]),
        (("21*2 계산해줘", "그 결과에 3을 더해"), ["21*2 = 42", "42+3 = 45"]),
        (
            ("compute 10/4", "multiply the result by 10", "subtract 5 from it"),
            ["10/4 = 2.5", "2.5*10 = 25", "25-5 = 20"],
        ),
        (("100-1 계산해줘", "그 결과를 3으로 나눠", "두 배로 해줘"), ["100-1 = 99", "99/3 = 33", "33*2 = 66"]),
        (("compute 12*12", "take the square root of it", "square it"), ["12*12 = 144", "sqrt(144) = 12", "12^2 = 144"]),
        (("7*7 계산해줘", "그 결과의 제곱근을 구해줘"), ["7*7 = 49", "sqrt(49) = 7"]),
    ],
)
def test_a_follow_up_works_on_the_earlier_result(
    ports: runner.Ports, texts: tuple[str, ...], answers: list[str]
) -> None:
    assert _turns(ports, *texts) == answers


def test_conversations_do_not_see_each_other(ports: runner.Ports) -> None:
    _turns(ports, "compute 6*7", conversation="a")
    _turns(ports, "compute 1+1", conversation="b")  # later, in another conversation

    assert _turns(ports, "double it", conversation="a") == ["42*2 = 84"]


def test_a_run_outside_a_conversation_does_not_resolve_it(ports: runner.Ports) -> None:
    _turns(ports, "compute 6*7")
    ports.store.create_run("alone", WorkflowRequest(input="double it"), "agents")

    assert run_inline("alone", ports).status == "rejected"  # no tool fits: there is nothing to double


def test_the_analyze_stage_records_the_context_it_saw(ports: runner.Ports) -> None:
    _turns(ports, "compute 21*2", "now double it")
    analyzed = ports.store.get_run("c1-1").stage("analyze")

    assert analyzed is not None
    context = Context.model_validate(analyzed.output["context"])
    assert [t.input for t in context.turns] == ["compute 21*2"] and context.last_value == "42"
    assert "the earlier result 42 -> 42*2" in analyzed.output["plan"]["rationale"]


def test_a_replay_of_a_follow_up_is_identical_even_after_the_conversation_went_on(ports: runner.Ports) -> None:
    _turns(ports, "compute 21*2", "now double it", "add 1 to it")
    original = ports.store.get_run("c1-1")

    replayed = replay(original, {}, ports)

    assert replayed["identical"], replayed["diff"]
    assert comparable(original)["output"]["answer"] == "42*2 = 84"


def _turn(index: int, words: int) -> Turn:
    return Turn(
        run_id=f"r{index}", input=f"question {index} " + "word " * words, status="succeeded", answer=f"a{index}"
    )


def test_turns_beyond_the_token_budget_are_summarised_in_one_line() -> None:
    turns = [_turn(i, 40) for i in range(10)]

    context = bound(turns, max_tokens=150)

    assert [t.run_id for t in context.turns] == ["r8", "r9"]
    assert context.summarised == 8
    assert context.summary is not None and context.summary.startswith("8 earlier turns: question 0")


def test_the_newest_turn_is_kept_even_when_it_alone_is_over_the_budget() -> None:
    assert [t.run_id for t in bound([_turn(0, 1000)], max_tokens=50).turns] == ["r0"]


@given(st.text(max_size=200), st.sampled_from(["42", "-3", "2.5"]))
def test_resolving_any_text_gives_nothing_or_arithmetic_on_the_earlier_value(text: str, value: str) -> None:
    resolved = resolve(text, value)
    if resolved is not None:
        base = f"({value})" if value.startswith("-") else value
        assert resolved == f"sqrt({base})" or (resolved.startswith(base) and resolved[len(base)] in "+-*/^")
        assert len(resolved) <= len(base) + 6 + len(text)


def test_a_request_with_its_own_calculation_is_not_a_follow_up() -> None:
    assert resolve("compute 2+3 and double it", "42") is None
    assert resolve("add 2 and 3", "42") is None
    assert resolve("now double it", None) is None

"""The `openai` profile against a local server that speaks the chat-completions API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.config import OpenAISettings
from agents.errors import ProfileError
from agents.models import WorkflowRequest
from agents.profiles import OpenAIProfile, parse_reply
from agents.tools import default_registry
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _profile(fake: FakeOpenAI, key: str | None = "test-key") -> OpenAIProfile:
    settings = OpenAISettings(
        base_url=fake.base_url, model="fake-1", prompt_price_per_1k=0.5, completion_price_per_1k=2.0
    )
    return OpenAIProfile(settings, key)


def test_the_plan_comes_from_a_tool_call_with_tokens_and_cost(fake: FakeOpenAI) -> None:
    plan, usage = _profile(fake).plan(WorkflowRequest(input="compute 42*2", profile="openai"), default_registry())

    assert [(s.tool, s.args) for s in plan.subtasks] == [("math.calculate", {"expression": "42*2"})]
    assert plan.tools == ("math.calculate:v1",)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cost) == (120, 30, 0.12)
    headers, body = fake.requests[0]
    assert headers["Authorization"] == "Bearer test-key"
    assert body["model"] == "fake-1" and body["seed"] == 7
    assert body["tool_choice"]["function"]["name"] == "submit_plan"
    assert "math.calculate" in body["messages"][0]["content"]


def test_a_plan_that_is_not_json_is_a_profile_error(fake: FakeOpenAI) -> None:
    with pytest.raises(ProfileError, match="not valid JSON"):
        _profile(fake).plan(WorkflowRequest(input="broken please"), default_registry())


def test_without_an_api_key_the_profile_says_which_variable_to_set(fake: FakeOpenAI) -> None:
    with pytest.raises(ProfileError, match="FLEET_OPENAI_API_KEY"):
        _profile(fake, key=None).plan(WorkflowRequest(input="compute 1+1"), default_registry())


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"choices": [{"message": {"content": "hi"}}]}, "did not call submit_plan"),
        ({"choices": [{"message": {"tool_calls": [{"function": {"arguments": '{"intent": 1}'}}]}}]}, "plan schema"),
    ],
)
def test_a_reply_without_a_valid_plan_is_refused(reply: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_reply(reply)


def test_a_conversation_turn_sends_the_earlier_turns_and_the_summary_as_messages(fake: FakeOpenAI) -> None:
    from agents.conversation import Context, Turn

    earlier = Turn(run_id="r1", input="compute 21*2", status="succeeded", answer="21*2 = 42", value="42")
    context = Context(turns=(earlier,), summary="2 earlier turns: hello -> hi", summarised=2)

    _profile(fake).plan(WorkflowRequest(input="now double it", profile="openai"), default_registry(), context)

    messages = fake.requests[0][1]["messages"]
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("system", "Earlier in this conversation: 2 earlier turns: hello -> hi"),
        ("user", "compute 21*2"),
        ("assistant", "21*2 = 42"),
        ("user", "now double it"),
    ]

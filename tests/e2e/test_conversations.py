"""Conversations over real uvicorn and the session worker: the REST routes and the WebSocket, in English and in
Korean, with the same keys and scopes as the other routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gateway.services import keys as key_service
from tests.e2e.conftest import ApiServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tokens() -> Iterator[dict[str, str]]:
    """Two keys that may run workflows, and one that may only read."""
    made = {name: key_service.create_key(f"e2e-conv-{name}", scopes) for name, scopes in
            (("alice", ["run"]), ("bob", ["run"]), ("reader", ["read"]))}  # fmt: skip
    yield {name: token for name, (_info, token) in made.items()}
    for info, _token in made.values():
        key_service.revoke_key(info.key_id)


def _client(api: ApiServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"X-API-Key": token}, timeout=60)


def _ws(api: ApiServer, conversation_id: str, token: str | None) -> ClientConnection:
    url = api.url.replace("http://", "ws://") + f"/api/v1/conversations/{conversation_id}/ws"
    return connect(url, additional_headers={"X-API-Key": token} if token else {}, open_timeout=30)


def _say(ws: ClientConnection, text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send one turn; the progress events received and the answer."""
    ws.send(json.dumps({"input": text}))
    events = []
    while (message := json.loads(ws.recv(timeout=60)))["type"] not in {"answer", "error"}:
        events.append(message)
    return events, message


def test_a_conversation_over_http_answers_a_follow_up_and_reads_back_its_turns(
    api_server: ApiServer, tokens: dict[str, str]
) -> None:
    with _client(api_server, tokens["alice"]) as http:
        created = http.post("/api/v1/conversations", json={"title": "arithmetic"})
        assert created.status_code == 201, created.text
        cid = created.json()["conversation_id"]
        first = http.post(f"/api/v1/conversations/{cid}/turns?wait=true", json={"input": "compute 21*2"}).json()
        second = http.post(f"/api/v1/conversations/{cid}/turns?wait=true", json={"input": "now double it"}).json()
        read = http.get(f"/api/v1/conversations/{cid}").json()
        listed = http.get("/api/v1/conversations").json()

    assert first["output"]["answer"] == "21*2 = 42"
    assert second["output"]["answer"] == "42*2 = 84" and second["request"]["conversation_id"] == cid
    assert [(t["input"], t["answer"], t["value"]) for t in read["turns"]] == [
        ("compute 21*2", "21*2 = 42", "42"), ("now double it", "42*2 = 84", "84")
    ]  # fmt: skip
    assert read["title"] == "arithmetic" and cid in [c["conversation_id"] for c in listed]


def test_another_keys_conversation_is_not_found_and_a_read_key_cannot_post_turns(
    api_server: ApiServer, tokens: dict[str, str]
) -> None:
    with _client(api_server, tokens["alice"]) as alice:
        cid = alice.post("/api/v1/conversations", json={}).json()["conversation_id"]
    with _client(api_server, tokens["bob"]) as bob:
        assert bob.get(f"/api/v1/conversations/{cid}").status_code == 404
        assert bob.post(f"/api/v1/conversations/{cid}/turns", json={"input": "double it"}).status_code == 404
        assert cid not in [c["conversation_id"] for c in bob.get("/api/v1/conversations").json()]
        # Nor can a plain run join it (it would see alice's turns)
        joined = bob.post("/api/v1/agent/run", json={"input": "double it", "conversation_id": cid})
        assert joined.status_code == 404 and joined.json()["code"] == "conversation_not_found"
    with _client(api_server, tokens["reader"]) as reader:
        refused = reader.post(f"/api/v1/conversations/{cid}/turns", json={"input": "compute 1+1"})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    ("first", "follow_up", "answers"),
    [
        ("compute 21*2", "now double it", ("21*2 = 42", "42*2 = 84")),
        ("21*2 계산해줘", "그 결과에 3을 더해", ("21*2 = 42", "42+3 = 45")),
    ],
    ids=["english", "korean"],
)
def test_a_two_turn_conversation_over_the_websocket_streams_progress_and_answers(
    api_server: ApiServer, tokens: dict[str, str], first: str, follow_up: str, answers: tuple[str, str]
) -> None:
    with _client(api_server, tokens["alice"]) as http:
        cid = http.post("/api/v1/conversations", json={}).json()["conversation_id"]

    with _ws(api_server, cid, tokens["alice"]) as ws:
        events_1, answer_1 = _say(ws, first)
        events_2, answer_2 = _say(ws, follow_up)

    assert (answer_1["answer"], answer_2["answer"]) == answers
    assert answer_1["status"] == answer_2["status"] == "succeeded"
    for events, answer in ((events_1, answer_1), (events_2, answer_2)):
        assert events[0] == {"type": "run", "run_id": answer["run_id"]}
        stages = [e["stage"] for e in events if e["type"] == "stage_finished"]
        assert stages == ["analyze", "gate", "execute", "verify"]
        assert events[-1]["type"] == "run_finished"


def test_the_websocket_refuses_a_caller_without_a_key_and_says_why(
    api_server: ApiServer, tokens: dict[str, str]
) -> None:
    with _client(api_server, tokens["alice"]) as http:
        cid = http.post("/api/v1/conversations", json={}).json()["conversation_id"]

    with _ws(api_server, cid, None) as ws:
        error = json.loads(ws.recv(timeout=30))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)

    assert (error["type"], error["status"], error["code"]) == ("error", 401, "unauthorized")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_a_bad_turn_on_the_websocket_is_an_error_and_the_conversation_goes_on(
    api_server: ApiServer, tokens: dict[str, str]
) -> None:
    with _client(api_server, tokens["alice"]) as http:
        cid = http.post("/api/v1/conversations", json={}).json()["conversation_id"]

    with _ws(api_server, cid, tokens["alice"]) as ws:
        ws.send(json.dumps({"input": ""}))
        error = json.loads(ws.recv(timeout=30))
        _events, answer = _say(ws, "compute 6*7")

    assert (error["type"], error["code"]) == ("error", "validation_failed")
    assert answer["answer"] == "6*7 = 42"


@pytest.mark.parametrize(
    "body",
    ['{"input": "\\ud800"}', '{"input": "compute 1+1", "options": {"queue": "fleet:evil"}}',
     '{"input": "compute 1+1", "options": {"x": NaN}}', '{"input": "x", "profile": "Bad Profile"}'],
    ids=["lone-surrogate", "foreign-queue", "nan", "bad-profile"],
)  # fmt: skip
def test_a_turn_no_run_could_take_is_refused_with_422_before_anything_runs(
    api_server: ApiServer, tokens: dict[str, str], body: str
) -> None:
    with _client(api_server, tokens["alice"]) as http:
        cid = http.post("/api/v1/conversations", json={}).json()["conversation_id"]
        refused = http.post(
            f"/api/v1/conversations/{cid}/turns", content=body, headers={"Content-Type": "application/json"}
        )
        turns = http.get(f"/api/v1/conversations/{cid}").json()["turns"]

    assert refused.status_code == 422, refused.text
    assert turns == []


def test_the_websocket_of_an_unknown_conversation_says_so_and_closes(
    api_server: ApiServer, tokens: dict[str, str]
) -> None:
    with _ws(api_server, "no-such-conversation", tokens["alice"]) as ws:
        error = json.loads(ws.recv(timeout=30))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)

    assert (error["status"], error["code"]) == (404, "conversation_not_found")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404

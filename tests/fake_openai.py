"""A local server that speaks the OpenAI chat-completions API (tool calling), for the `openai` profile's tests."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _reply(arguments: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "submit_plan", "arguments": arguments}}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }


def plan_for(text: str) -> str:
    """The plan the fake model gives: a calculation of the first expression in the request; broken JSON on request."""
    if "broken" in text:
        return '{"intent": "calc", "subtasks": [{"id": "s1",'
    expression = (re.findall(r"[0-9][0-9+*/() .-]*[0-9)]", text) or ["1+1"])[0].replace(" ", "")
    plan = {"intent": "calculate", "language": "en", "rationale": "arithmetic",
            "subtasks": [{"id": "s1", "tool": "math.calculate", "version": "v1", "args": {"expression": expression}}]}  # fmt: skip
    return json.dumps(plan)


class FakeOpenAI:
    """`POST /v1/chat/completions` on a free local port; remembers every request body and header. `mode` makes it
    an outage at will: `ok`, `fail` (HTTP 503), `hang` (holds the request `hang_s`, then closes it unanswered)."""

    def __init__(self, mode: str = "ok", hang_s: float = 5.0) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.mode = mode
        self.hang_s = hang_s
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((dict(self.headers), body))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                if owner.mode == "fail":
                    self.send_error(503, "model overloaded")
                    return
                if owner.mode == "hang":
                    owner._release.wait(owner.hang_s)  # the client gave up long before: nothing to answer
                    return
                user = next(m["content"] for m in body["messages"] if m["role"] == "user")
                data = json.dumps(_reply(plan_for(user))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The API root, as the profile's base_url setting takes it."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def answered(self) -> int:
        """How many requests reached the chat-completions path."""
        return sum(1 for _headers, body in self.requests if "messages" in body)

    def __exit__(self, *_exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

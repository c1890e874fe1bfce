"""MCP tools as registry tools: side effects and approval by default, outputs, and their config."""

from __future__ import annotations

import pytest
from mcp import types
from pydantic import ValidationError

from agents import gatekeeper
from agents.config import AgentsConfig, McpServer
from agents.errors import ToolError
from agents.models import Plan, Subtask, Usage, WorkflowRequest
from agents.tools import default_registry
from agents.tools.mcp import output_of, tool_of

SERVER = McpServer(name="notes", transport="http", url="http://127.0.0.1:9/mcp", version="v3", read_only=("search",))
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def _listed(name: str, read_only_hint: bool | None = None) -> types.Tool:
    hints = types.ToolAnnotations(readOnlyHint=read_only_hint) if read_only_hint is not None else None
    return types.Tool(name=name, description=f"{name} things", inputSchema=SCHEMA, annotations=hints)


@pytest.mark.parametrize(
    ("name", "hint", "side_effect"),
    [("write", None, True), ("write", False, True), ("lookup", True, False), ("search", None, False)],
)
def test_an_mcp_tool_has_side_effects_unless_the_server_or_the_config_says_read_only(
    name: str, hint: bool | None, side_effect: bool
) -> None:
    tool = tool_of(SERVER, _listed(name, hint))

    assert (tool.name, tool.version, tool.schema) == (f"notes.{name}", "v3", SCHEMA)
    assert (tool.side_effect, tool.needs_approval, tool.cacheable) == (side_effect, side_effect, not side_effect)
    assert tool.describe()["origin"] == "mcp:notes"


def test_a_plan_calling_a_side_effecting_mcp_tool_is_held_even_for_an_admin_key() -> None:
    registry = default_registry([tool_of(SERVER, _listed("write"))])
    plan = Plan(intent="note", subtasks=(Subtask(id="s1", tool="notes.write", version="v3", args={"text": "x"}),))
    request = WorkflowRequest(input="note x", scopes=("admin",))

    verdict = gatekeeper.check(plan, request, registry, AgentsConfig(), Usage())

    assert verdict.decision == "needs_human"
    assert verdict.reasons == ("s1: tool notes.write needs a person's approval",)


def test_with_approval_off_an_admin_key_runs_it_and_a_run_key_is_refused() -> None:
    server = SERVER.model_copy(update={"approval": False})
    registry = default_registry([tool_of(server, _listed("write"))])
    plan = Plan(intent="note", subtasks=(Subtask(id="s1", tool="notes.write", version="v3", args={"text": "x"}),))

    admin = gatekeeper.check(plan, WorkflowRequest(input="x", scopes=("admin",)), registry, AgentsConfig(), Usage())
    runner = gatekeeper.check(plan, WorkflowRequest(input="x", scopes=("run",)), registry, AgentsConfig(), Usage())

    assert admin.decision == "approve"
    assert runner.decision == "reject" and "needs the 'admin' scope" in runner.reasons[0]


def test_a_call_result_becomes_an_output_and_an_error_result_a_tool_error() -> None:
    text = [types.TextContent(type="text", text='{"found": 2}')]
    assert output_of(types.CallToolResult(content=[], structuredContent={"sum": 5}), "r") == {"sum": 5}
    assert output_of(types.CallToolResult(content=text), "r") == {"found": 2}
    assert output_of(types.CallToolResult(content=[types.TextContent(type="text", text="hi")]), "r") == {"text": "hi"}
    with pytest.raises(ToolError, match=r"notes\.write:v3: disk full"):
        output_of(
            types.CallToolResult(content=[types.TextContent(type="text", text="disk full")], isError=True),
            "notes.write:v3",
        )


@pytest.mark.parametrize(
    ("server", "message"),
    [({"name": "a", "transport": "stdio"}, "stdio needs a command"), ({"name": "a", "transport": "http"}, "http needs a url"),
     ({"name": "Bad Name", "transport": "http", "url": "http://x"}, "name"),
     ({"name": "math", "transport": "http", "url": "http://x"}, "taken by the fleet's own tools")],
)  # fmt: skip
def test_an_mcp_server_entry_names_what_it_lacks(server: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        McpServer.model_validate(server)


def test_two_mcp_servers_of_one_name_are_refused() -> None:
    server = {"name": "a", "transport": "http", "url": "http://x"}
    with pytest.raises(ValidationError, match="MCP server names must be unique"):
        AgentsConfig.model_validate({"mcp_servers": [server, server]})

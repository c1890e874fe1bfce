"""Tools served by MCP servers (stdio or streamable HTTP, the `mcp` package), registered like the fleet's own.

Each server of `agents.mcp_servers` is asked for its tools once per process; each call opens its own session
(a stdio server is a process per call), bounded by the server's `timeout_s`, inside the subtask's time limit.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import httpx
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client

from agents.config import McpServer
from agents.errors import ToolError, ToolTransientError
from agents.tools import Tool, ToolContext

# Errors of a server that did not answer (down, restarting, slow): worth a retry for a call free of side effects.
UNREACHABLE = (OSError, httpx.HTTPError, anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError)


@asynccontextmanager
async def _session(server: McpServer) -> AsyncIterator[ClientSession]:
    if server.transport == "stdio":
        # Not the worker's environment (database URL, API keys): the basics a process needs, and the server's own.
        env = {**get_default_environment(), **server.env}
        params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]), env=env)
        with open(os.devnull, "w") as quiet:  # the server's own stderr chatter is not ours to log
            async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                yield session
        return
    async with (
        httpx.AsyncClient(timeout=server.timeout_s) as client,
        streamable_http_client(str(server.url), http_client=client) as (read, write, _session_id),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def _list(server: McpServer) -> list[types.Tool]:
    with anyio.fail_after(server.timeout_s):
        async with _session(server) as session:
            return list((await session.list_tools()).tools)


async def _call(server: McpServer, name: str, args: dict[str, Any]) -> types.CallToolResult:
    with anyio.fail_after(server.timeout_s):
        async with _session(server) as session:
            return await session.call_tool(name, args, read_timeout_seconds=timedelta(seconds=server.timeout_s))


def output_of(result: types.CallToolResult, ref: str) -> dict[str, Any]:
    """A call's result as a tool output: its structured content, else its text (JSON when it parses)."""
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    if result.isError:
        raise ToolError(f"{ref}: {' '.join(texts) or 'the MCP server reported an error'}")
    if isinstance(result.structuredContent, dict):
        return dict(result.structuredContent)
    text = "\n".join(texts)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"text": text}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _runner(
    server: McpServer, name: str, ref: str, side_effect: bool
) -> Callable[[dict[str, Any], ToolContext], dict[str, Any]]:
    def run(args: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
        try:
            result = anyio.run(_call, server, name, args)
        except UNREACHABLE as exc:
            # A side effect may have happened before the answer was lost: never retried blindly.
            error = ToolError if side_effect else ToolTransientError
            raise error(f"{ref}: MCP server {server.name} did not answer: {_why(exc, server)}") from None
        output = output_of(result, ref)
        size = len(json.dumps(output, ensure_ascii=False, default=str).encode())
        if size > server.max_output_bytes:
            raise ToolError(f"{ref}: the output holds {size} bytes; the limit is {server.max_output_bytes}")
        return output

    return run


def _why(exc: BaseException, server: McpServer) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {server.timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}"


def tool_of(server: McpServer, listed: types.Tool) -> Tool:
    """One MCP tool as a registry tool: `<server>.<tool>` at the server's version, its own JSON Schema."""
    hints = listed.annotations
    read_only = listed.name in server.read_only or bool(hints is not None and hints.readOnlyHint)
    name = f"{server.name}.{listed.name}"
    ref = f"{name}:{server.version}"
    return Tool(name=name, version=server.version, description=listed.description or f"{listed.name} ({server.name})",
                schema=dict(listed.inputSchema), run=_runner(server, listed.name, ref, not read_only),
                side_effect=not read_only, cacheable=read_only, scope=server.scope,
                needs_approval=server.approval and not read_only, origin=f"mcp:{server.name}")  # fmt: skip


def discover(server: McpServer) -> list[Tool]:
    """The server's tools (those `tools` allows), asked over its transport; ToolError when it does not answer."""
    try:
        listed = anyio.run(_list, server)
    except UNREACHABLE as exc:
        raise ToolError(f"MCP server {server.name} did not list its tools: {_why(exc, server)}") from None
    return [tool_of(server, t) for t in listed if not server.tools or t.name in server.tools]

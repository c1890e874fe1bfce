"""A real MCP server for the tests: `python tests/mcp_server.py stdio` or `... http PORT`.

`add` is read-only; `note` appends to the file named by FLEET_TEST_MCP_NOTES (a side effect); `slow` sleeps;
`environ` says whether the server sees a variable.
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(readOnlyHint=True)


def build(port: int = 8000) -> FastMCP:
    """The server with its three tools."""
    server = FastMCP("fleet-test", port=port, log_level="WARNING")

    @server.tool(annotations=READ_ONLY)
    def add(a: float, b: float) -> dict[str, float]:
        """Add two numbers."""
        return {"sum": a + b}

    @server.tool()
    def note(text: str) -> dict[str, str]:
        """Write a note (a side effect: one line in the notes file)."""
        with open(os.environ["FLEET_TEST_MCP_NOTES"], "a", encoding="utf-8") as notes:
            notes.write(text + "\n")
        return {"saved": text}

    @server.tool(annotations=READ_ONLY)
    async def slow(seconds: float) -> dict[str, float]:
        """Sleep, then answer (for time limits); the server answers others meanwhile."""
        await anyio.sleep(seconds)
        return {"slept": seconds}

    @server.tool(annotations=READ_ONLY)
    def environ(name: str) -> dict[str, bool]:
        """Whether this server process sees an environment variable."""
        return {"present": name in os.environ}

    return server


if __name__ == "__main__":
    if sys.argv[1] == "http":
        build(int(sys.argv[2])).run("streamable-http")
    else:
        build().run("stdio")

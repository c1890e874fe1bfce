"""A tool that fails until a file exists (`agents.tool_modules: [tests.flaky_tools]`): a run fails at it after
its other subtasks applied their side effects, and succeeds when resumed once the file is there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.errors import ToolError
from agents.tools import Tool, ToolContext


def _until_file(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    if not Path(args["path"]).exists():
        raise ToolError(f"test.until_file: {args['path']} does not exist yet")
    return {"found": args["path"]}


TOOLS = [
    Tool(
        "test.until_file",
        "v1",
        "Fails until the file exists.",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        _until_file,
        cacheable=False,
    )
]

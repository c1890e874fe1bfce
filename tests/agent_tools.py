"""Tools for fault tests, loaded by test workers through `agents.tool_modules` (never by the fleet itself)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

from agents.errors import ToolTransientError
from agents.tools import Tool, ToolContext

OBJECT = {"type": "object", "additionalProperties": True}


def _flaky(args: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
    raise ToolTransientError("test.flaky: backend unavailable")


def _sleep(args: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
    time.sleep(args.get("ms", 100) / 1000)
    return {"slept_ms": args.get("ms", 100)}


def _effect(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Applies an effect once per idempotency key (as a real side-effecting backend must), then holds."""
    folder = Path(os.environ["FLEET_TEST_EFFECTS_DIR"])
    key = context.idempotency_key or "no-key"
    with (folder / "calls.log").open("a") as calls:
        calls.write(f"{key}\n")
    with (folder / "effects.log").open("a+") as effects:
        fcntl.flock(effects, fcntl.LOCK_EX)
        effects.seek(0)
        applied = key in effects.read().split()
        if not applied:
            effects.write(f"{key}\n")
            effects.flush()
    time.sleep(args.get("hold_ms", 0) / 1000)
    return {"key": key, "applied_now": not applied}


def _hold(args: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
    """Holds its subtask (and so its run, `executing`) until the test creates the file `release`, or 60 s pass."""
    release, deadline = Path(args["release"]), time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"released": release.exists()}


TOOLS = [
    Tool("test.flaky", "v1", "Always fails with a transient error.", OBJECT, _flaky, cacheable=False),
    Tool("test.sleep", "v1", "Sleeps `ms` milliseconds.", OBJECT, _sleep, cacheable=False),
    Tool("test.hold", "v1", "Holds until the file `release` exists.", OBJECT, _hold, cacheable=False),
    Tool(
        "test.effect",
        "v1",
        "Applies a side effect once per key, then holds.",
        OBJECT,
        _effect,
        side_effect=True,
        cacheable=False,
    ),
]

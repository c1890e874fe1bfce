"""`system.status:v1`: host signals from psutil, plus the fleet's status when the process knows it."""

from __future__ import annotations

import os
from typing import Any

import psutil

from agents.tools import Tool, ToolContext


def host_status(interval_s: float = 0.0) -> dict[str, Any]:
    """CPU, memory, disk and load of this host."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(os.path.abspath(os.sep))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_percent": psutil.cpu_percent(interval=interval_s or None),
        "cpu_count": psutil.cpu_count() or 0,
        "memory_percent": memory.percent,
        "memory_available_mb": round(memory.available / 2**20),
        "disk_percent": disk.percent,
        "load_1m": round(load[0], 2),
    }


def _run(args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    result: dict[str, Any] = {"host": host_status(float(args.get("interval_s", 0)))}
    if context.fleet_status is not None:
        result["fleet"] = context.fleet_status()
    return result


TOOL = Tool(
    name="system.status",
    version="v1",
    description="Host signals (CPU, memory, disk, load) and the fleet's status.",
    schema={
        "type": "object",
        "properties": {"interval_s": {"type": "number", "minimum": 0, "maximum": 5}},
        "additionalProperties": False,
    },
    run=_run,
    cacheable=False,
)

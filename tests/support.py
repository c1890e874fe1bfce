"""Test helpers: the installed `agent` command, waits that poll a condition (processes: tests/processes.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT, PostgresServer, WorkerProcess, wait_for


def run_agent(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """Run the installed `agent` command as a user would, with the session's environment plus `env`."""
    agent = str(Path(sys.executable).parent / "agent")
    return subprocess.run(
        [agent, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


__all__ = ["ROOT", "PostgresServer", "WorkerProcess", "run_agent", "wait_for"]

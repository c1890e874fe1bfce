"""The bare benchmark app stays bare: no fleet import, the fleet's broker transport options."""

from __future__ import annotations

import subprocess
import sys

from bench.common import ROOT


def test_the_bare_app_uses_the_fleets_priority_transport_options() -> None:
    """Given the fleet constants, when the bare app is configured, then its priority options are the same."""
    from bench.bare import app
    from worker.constants import PRIORITY_SEP, PRIORITY_STEPS

    options = app.conf.broker_transport_options
    assert (options["priority_steps"], options["sep"]) == (PRIORITY_STEPS, PRIORITY_SEP)


def test_importing_the_bare_app_does_not_import_the_fleet() -> None:
    """Given a fresh interpreter, when bench.bare is imported, then no fleet signal handler is connected."""
    code = "import sys, bench.bare; print(any(m == 'worker' or m.startswith('worker.') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"

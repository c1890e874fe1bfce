"""Importing the fleet's code builds nothing; `celery -A worker` finds the app, built with everything installed.

Each check runs in a fresh interpreter: what an import installs (a codec, a patch, a signal handler) stays for
the life of the process, so the pytest process itself cannot tell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

# What a process has installed: Celery apps made, kombu's JSON decoder, Celery's saferepr, signal receivers,
# SQLAlchemy's statement events, the Prometheus folder.
PROBE = """
import json, os, sys, weakref
import celery._state, celery.app.trace
from celery import signals
from celery.utils.dispatch.signal import Signal
from kombu.serialization import registry
from sqlalchemy import Engine, event

FLEET = ("worker", "gateway", "agents", "ledger", "beat")

def fleet_receivers(signal):
    # Handlers defined by the fleet's modules (a library may connect its own when imported).
    found = [r() if isinstance(r, weakref.ReferenceType) else r for _key, r in signal.receivers]
    return [f for f in found if getattr(f, "__module__", "").split(".")[0] in FLEET]

def installed():
    from worker import telemetry

    return {
        "apps": sorted(app.main or "" for app in celery._state._get_active_apps()),
        "decoder": registry._decoders["application/json"].__module__,
        "saferepr": celery.app.trace.saferepr.__module__,
        "receivers": sorted(
            n for n in dir(signals) if isinstance(getattr(signals, n), Signal) and fleet_receivers(getattr(signals, n))
        ),
        "sql_events": event.contains(Engine, "before_cursor_execute", telemetry._before_sql),
        "prometheus_dir": bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
    }
"""

# Every module of the fleet but the task modules (the app imports those itself, through `include`).
IMPORT_ALL = """
import importlib, pkgutil
import gateway.api, gateway.cli
for package in ("worker", "gateway", "agents", "ledger", "beat"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if not info.name.endswith((".tasks", ".__main__")):
            importlib.import_module(info.name)
print(json.dumps(installed()))
"""

FIND_APP = """
from celery.app.utils import find_app
app = find_app("worker")  # what `celery -A worker ...` does
again = find_app("worker")
import worker.agents.tasks, worker.reports.tasks, worker.ledger.tasks, worker.tasks
found = {"same": app is again, "main": app.main, "task": worker.ledger.tasks.quick_run.app is app}
print(json.dumps({**installed(), **found, "matplotlib": "matplotlib" in sys.modules}))
"""


def _run(script: str, tmp_path: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"FLEET_LOG_DIR": str(tmp_path / "log"), "FLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE + script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_importing_the_api_the_cli_and_every_module_builds_no_app_and_installs_nothing(tmp_path: Path) -> None:
    # Given a fresh process, when it imports the API, the CLI and every fleet module but the task modules
    found = _run(IMPORT_ALL, tmp_path)

    # Then no Celery app exists, kombu and Celery are untouched, no handler is connected, no folder was chosen
    assert found == {
        "apps": [],
        "decoder": "kombu.utils.json",
        "saferepr": "celery.utils.saferepr",
        "receivers": [],
        "sql_events": False,
        "prometheus_dir": False,
    }


def test_celery_dash_a_worker_finds_one_app_built_with_the_codec_patches_and_handlers(tmp_path: Path) -> None:
    # Given a fresh process, when it looks the app up as `celery -A worker` does (twice) and imports the task modules
    found = _run(FIND_APP, tmp_path)

    # Then it is the fleet's one app, the tasks are bound to it, and everything create_app installs is in place
    assert found["apps"] == ["fleet"] and found["main"] == "fleet" and found["same"] and found["task"]
    assert found["decoder"] == "worker.codec" and found["saferepr"] == "worker.saferepr"
    receivers = set(found["receivers"])  # type: ignore[call-overload]
    assert {"setup_logging", "before_task_publish", "task_prerun", "task_failure", "worker_ready"} <= receivers
    assert {"task_unknown", "task_rejected", "task_received", "worker_process_init"} <= receivers
    assert found["sql_events"] and found["prometheus_dir"]
    assert not found["matplotlib"]  # a second of start-up and memory in every worker: loaded to draw a chart only

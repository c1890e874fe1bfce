"""The client module for other apps: the fleet's transport options and priorities, without `worker`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.client import BROKER_TRANSPORT_OPTIONS, PRIORITIES, make_app, priority_of
from tests.support import ROOT
from worker.constants import CORRELATION_HEADER, PRIORITY_LEVELS, PRIORITY_SEP, PRIORITY_STEPS


def test_the_client_agrees_with_the_fleet_on_priorities_and_transport_options() -> None:
    # A producer that disagrees on these sends messages to lists no worker reads.
    assert PRIORITIES == PRIORITY_LEVELS
    assert BROKER_TRANSPORT_OPTIONS["priority_steps"] == PRIORITY_STEPS
    assert BROKER_TRANSPORT_OPTIONS["sep"] == PRIORITY_SEP
    assert BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] == "priority"
    from gateway import client

    assert client.CORRELATION_HEADER == CORRELATION_HEADER


def test_a_client_app_serialises_json_only() -> None:
    app = make_app("redis://127.0.0.1:1/0")
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.broker_transport_options["sep"] == ":"


@pytest.mark.parametrize(("given", "level"), [("critical", 0), ("high", 3), ("normal", 5), ("low", 8), (9, 9), (0, 0)])
def test_priorities_are_accepted_by_name_or_number(given: int | str, level: int) -> None:
    assert priority_of(given) == level


@pytest.mark.parametrize("given", [10, -1])
def test_a_priority_outside_0_to_9_is_refused(given: int) -> None:
    with pytest.raises(ValueError, match="0-9"):
        priority_of(given)


def test_the_client_module_does_not_import_the_fleet() -> None:
    code = "import sys, gateway.client; bad = [m for m in sys.modules if m == 'worker' or m.startswith('worker.')]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The producer contract (fleet_contract) is the one the fleet runs on, the client sends with, and the README,
the docs and the examples (Python and Node) tell other applications to copy."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fleet_contract as contract
from gateway import client
from tests.support import ROOT

NODE_PRODUCER = ROOT / "examples" / "node" / "producer.js"
PYTHON_SOURCES = ["README.md", "docs/gateway.md", "docs/ledger.md", "examples/python_producer.py"]


def _python(source: str) -> list[str]:
    path = ROOT / source
    text = path.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL) if path.suffix == ".md" else [text]


def _keyword_literals(snippet: str, name: str) -> list[Any]:
    """The literal value of every `name=` keyword argument in a snippet (`list(range(n))` read as a list)."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Call) and ast.unparse(node).startswith("list(range("):
            return list(range(*(ast.literal_eval(arg) for arg in node.args[0].args)))  # type: ignore[attr-defined]
        if isinstance(node, ast.Dict):
            return {ast.literal_eval(k): value(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
        return ast.literal_eval(node)

    tree = ast.parse(snippet)
    return [value(node.value) for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == name]


def test_the_fleet_runs_on_the_contract() -> None:
    import celeryconfig

    # The three transport options, the routes, the default priority and the queues of the workers
    options = celeryconfig.broker_transport_options
    assert {key: options[key] for key in contract.BROKER_TRANSPORT_OPTIONS} == contract.BROKER_TRANSPORT_OPTIONS
    assert celeryconfig.task_routes == contract.TASK_ROUTES
    assert celeryconfig.task_default_priority == contract.DEFAULT_PRIORITY
    assert [queue.name for queue in celeryconfig.task_queues] == list(contract.QUEUES)
    assert celeryconfig.task_serializer == "json" and celeryconfig.accept_content == ["json"]


def test_the_client_sends_with_the_contract_and_the_old_ledger_client_is_the_same_one() -> None:
    app = client.make_app("redis://127.0.0.1:1/0")
    for key, value in contract.producer_settings().items():
        assert app.conf[key] == value, key
    from ledger import client as legacy

    assert legacy.submit is client.submit and legacy.Sent is client.Sent and legacy.producer_app is client.make_app
    assert legacy.BROKER_TRANSPORT_OPTIONS == contract.BROKER_TRANSPORT_OPTIONS
    assert client.CORRELATION_HEADER == legacy.CORRELATION_HEADER == contract.CORRELATION_HEADER


def test_a_producers_settings_are_copies_it_may_change() -> None:
    settings = contract.producer_settings()
    settings["broker_transport_options"]["priority_steps"].append(10)
    settings["accept_content"].append("pickle")
    assert list(range(10)) == contract.PRIORITY_STEPS and contract.SERIALIZATION["accept_content"] == ["json"]


@pytest.mark.parametrize("source", PYTHON_SOURCES)
def test_python_snippets_copy_the_transport_options_and_the_header(source: str) -> None:
    snippets = _python(source)
    options = [found for snippet in snippets for found in _keyword_literals(snippet, "broker_transport_options")]
    assert options, f"no broker_transport_options in {source}"
    assert all(found == contract.BROKER_TRANSPORT_OPTIONS for found in options), options
    headers = [
        {ast.literal_eval(key) for key in node.value.keys if key is not None}
        for snippet in snippets
        for node in ast.walk(ast.parse(snippet))
        if isinstance(node, ast.keyword) and node.arg == "headers" and isinstance(node.value, ast.Dict)
    ]
    assert all(found == {contract.CORRELATION_HEADER} for found in headers), headers


@pytest.mark.parametrize("source", ["docs/gateway.md", "docs/agents.md", "docs/ledger.md"])
def test_the_priority_levels_the_docs_name_are_the_contracts(source: str) -> None:
    text = (ROOT / source).read_text(encoding="utf-8")
    named = dict(re.findall(r"`(critical|high|normal|low)`\s*=\s*(\d)", text))
    listed = re.findall(r"`(critical\|high\|normal\|low)`", text)
    assert named or listed, f"{source} names no priority level"
    assert {name: int(level) for name, level in named.items()} == {
        name: level for name, level in contract.PRIORITY_LEVELS.items() if name in named
    }
    for found in listed:
        assert found.split("|") == list(contract.PRIORITY_LEVELS)


def test_the_node_example_uses_the_separator_and_the_header() -> None:
    source = NODE_PRODUCER.read_text(encoding="utf-8")
    assert re.search(r'const PRIORITY_SEP = "(.*?)";', source).group(1) == contract.PRIORITY_SEP  # type: ignore[union-attr]
    assert re.search(rf"\b{contract.CORRELATION_HEADER}: correlationId\b", source)
    assert "priority >= 0 && priority <= 9" in source and list(range(10)) == contract.PRIORITY_STEPS


def test_the_node_example_pushes_each_priority_to_the_list_a_worker_reads() -> None:
    # Given the Node example's own list naming (its function, evaluated by node, without the redis package)
    node = shutil.which("node")
    assert node is not None, "node runs the Node example (tests/e2e/test_node_producer.py too)"
    source = NODE_PRODUCER.read_text(encoding="utf-8")
    functions = re.search(r"const PRIORITY_SEP = .*?\n\nfunction listFor\(.*?\n}\n", source, flags=re.DOTALL)
    assert functions is not None
    pairs = [[queue, step] for queue in contract.QUEUES for step in contract.PRIORITY_STEPS]
    script = f"{functions.group(0)}\nconsole.log(JSON.stringify({json.dumps(pairs)}.map(([q, p]) => listFor(q, p))));"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True, timeout=60)
    # Then every list is the one kombu's Redis transport, with the fleet's options, reads for that priority
    assert json.loads(out.stdout) == [contract.priority_list(queue, step) for queue, step in pairs]


def test_the_contract_module_imports_nothing_but_the_standard_library() -> None:
    code = "import sys; before = set(sys.modules); import fleet_contract; print(sorted(set(sys.modules) - before))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.replace("'", '"'))
    assert all(name.split(".")[0] in sys.stdlib_module_names or name == "fleet_contract" for name in loaded), loaded


@pytest.mark.parametrize(("given", "level"), [("critical", 0), ("high", 3), ("normal", 5), ("low", 8), (9, 9), (0, 0)])
def test_priorities_are_accepted_by_name_or_number(given: int | str, level: int) -> None:
    assert contract.priority_of(given) == level


@pytest.mark.parametrize("given", [10, -1, "urgent", True, 2.0])
def test_anything_else_is_refused_as_a_priority(given: Any) -> None:
    with pytest.raises(ValueError, match="0-9"):
        contract.priority_of(given)


def test_the_python_sources_exist() -> None:
    assert all((ROOT / source).is_file() for source in PYTHON_SOURCES) and Path(NODE_PRODUCER).is_file()


def test_the_client_needs_only_celery_until_it_speaks_http_or_applies_the_ledgers_rules() -> None:
    code = "import sys, gateway.client; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    assert not loaded & {"worker", "ledger", "agents", "beat", "httpx", "pydantic", "orjson", "sqlalchemy"}, loaded

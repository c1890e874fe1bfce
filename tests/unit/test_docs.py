"""The README stays a short tour, its links and the reference pages' links lead somewhere, and the snippets
and tables the docs give agree with the code."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger.client import BROKER_TRANSPORT_OPTIONS
from ledger.codes import markdown_table
from tests.support import ROOT
from worker.settings import Settings

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*```")


def prose(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a file's headings: lower case, punctuation dropped, spaces as hyphens."""
    seen: dict[str, int] = {}
    for line in prose(path):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen)


def relative_links(path: Path) -> list[str]:
    """Every link of a file that points inside the repository."""
    found = [target for line in prose(path) for target in LINK.findall(line)]
    return [t for t in found if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_the_readme_is_a_short_tour() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, len(lines)
    text = "\n".join(lines)
    for step in ("make run", "make test", ". .venv/bin/activate", ".venv/bin/agent", "agent run", "agent ledger"):
        assert step in text, step


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with anchor #{anchor} in {destination.name}")
    assert not broken, broken


# Every section the README had before it became a tour, and where it lives now.
FORMER_SECTIONS = {
    "Sending tasks from another application": "docs/gateway.md#tasks-by-name-from-another-application",
    "Task names": "docs/gateway.md#task-names",
    "Agent workflows": "docs/agents.md#commands",
    "Ledger quick runs: sending events": "docs/ledger.md#sending-events-from-another-application-with-only-celery-installed",
    "Ledger quick runs: envelope and data": "docs/ledger.md#envelope-and-data",
    "Ledger quick runs: result": "docs/ledger.md#result",
    "Ledger quick runs: codes": "docs/ledger.md#codes-in-precedence-order",
    "Ledger quick runs: sequences and ordering": "docs/ledger.md#sequences-and-ordering",
    "Ledger quick runs: settings": "docs/ledger.md#settings-the-ledger-section-of-fleet_config",
    "Ledger quick runs: commands": "docs/ledger.md#commands",
    "Ledger quick runs: what each quick run records": "docs/ledger.md#what-each-quick-run-records",
    "Processes": "docs/operations.md#processes",
    "Settings": "docs/settings.md",
    "Scaling": "docs/operations.md#scaling",
    "Database": "docs/operations.md#database",
    "Tests": "docs/operations.md#tests",
    "Reliability": "docs/RELIABILITY.md",
    "Benchmarks": "docs/operations.md#benchmarks",
    "Status reports and observability": "docs/reports.md",
    "CLI exit codes": "docs/operations.md#exit-codes",
    "HTTP API (gateway)": "docs/gateway.md#routes",
    "From other applications": "docs/gateway.md#other-applications",
    "Scaling the API": "docs/gateway.md#scaling",
}


@pytest.mark.parametrize(("section", "target"), FORMER_SECTIONS.items())
def test_every_former_readme_section_is_a_link_away(section: str, target: str) -> None:
    assert target in relative_links(README), f"the README does not link {section} ({target})"


def _transport_options(source: str) -> list[dict[str, Any]]:
    """Every `broker_transport_options=...` value of a Python snippet."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Call) and ast.unparse(node).startswith("list(range("):
            return list(range(*(value(a) for a in node.args[0].args)))  # type: ignore[attr-defined]
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        return ast.literal_eval(node)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "broker_transport_options":
            found.append(value(node.value))
    return found


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("source", ["README.md", "docs/gateway.md", "docs/ledger.md", "examples/python_producer.py"])
def test_the_transport_options_other_apps_are_told_to_copy_are_the_fleets(source: str) -> None:
    import celeryconfig

    path = ROOT / source
    snippets = _python_blocks(path) if path.suffix == ".md" else [path.read_text(encoding="utf-8")]
    options = [found for snippet in snippets for found in _transport_options(snippet)]
    assert options, f"no broker_transport_options in {source}"
    fleet = {key: celeryconfig.broker_transport_options[key] for key in BROKER_TRANSPORT_OPTIONS}
    assert all(found == BROKER_TRANSPORT_OPTIONS == fleet for found in options), options


def test_the_ledger_page_holds_the_table_of_codes_in_precedence_order() -> None:
    assert markdown_table() in (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")


def test_the_settings_page_names_every_fleet_variable() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    variables = [f"FLEET_{name.upper()}" for name in Settings.model_fields if name != "yaml_config"]
    assert [v for v in variables if f"`{v}`" not in text] == []


def test_make_run_passes_args_to_agent_up() -> None:
    make = shutil.which("make")
    assert make is not None, "make is what the README's two commands need"
    # Under `make test` the parent make's MAKEFLAGS/MAKELEVEL would make this one print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    dry = subprocess.run(
        [make, "--no-print-directory", "-n", "run", "ARGS=--workers 2 --api-port 8080"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert dry.stdout.strip().splitlines()[-1].endswith("/agent up --workers 2 --api-port 8080"), dry.stdout

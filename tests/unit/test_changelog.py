"""CHANGELOG.md keeps Keep a Changelog's form: releases, then the standard kinds of change, no measurements."""

from __future__ import annotations

import re

from tests.support import ROOT

KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
RELEASE = re.compile(r"^## \[(Unreleased|\d+\.\d+\.\d+)\]( - \d{4}-\d{2}-\d{2})?$")
# Figures belong in docs/PERFORMANCE.md: a time per operation or a rate.
FIGURE = re.compile(r"\d\s?(µs|ms)\b|(tasks|events)/s\b")


def _releases() -> list[tuple[str, list[str]]]:
    releases: list[tuple[str, list[str]]] = []
    for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            releases.append((line, []))
        elif line.startswith("### "):
            assert releases, f"{line!r} before any release"
            releases[-1][1].append(line[4:])
    return releases


def test_each_release_lists_each_kind_of_change_once_in_keep_a_changelog_order() -> None:
    releases = _releases()
    assert releases[0][0] == "## [Unreleased]"
    for heading, kinds in releases:
        assert RELEASE.match(heading), f"not a release heading: {heading!r}"
        assert all(kind in KINDS for kind in kinds), f"{heading}: {kinds} (only {', '.join(KINDS)})"
        assert kinds == sorted(set(kinds), key=KINDS.index), f"{heading}: each kind once, in order: {kinds}"


def test_the_changelog_quotes_no_measurements() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    found = [line.strip() for line in text.splitlines() if FIGURE.search(line)]
    assert found == [], "figures belong in docs/PERFORMANCE.md"

"""The lock files agree with pyproject.toml, and the patched libraries run at the versions they pin.

`make install` installs requirements-dev.lock; the Docker image installs requirements.lock. A dependency added
to pyproject.toml without `make lock` would be missing from both, and a bound tightened there would not be
what the lock installs.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support import ROOT

LOCKS = {
    "requirements.lock": ("postgres",),
    "requirements-dev.lock": ("postgres", "dev"),
}
# The libraries whose internals the fleet uses (docs/PATCHES.md): their exact version is what the tripwires
# in tests/unit/test_library_tripwires.py were written against.
PATCHED = ("celery", "kombu", "redis", "flower", "prometheus-client")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")


def _pins(lock: str) -> dict[str, list[tuple[Version, Marker | None]]]:
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
        if not line or line[0] in "# ":
            continue
        match = _PIN.match(line)
        assert match, f"{lock}: not an exact pin: {line!r}"
        name, pinned, marker = match.groups()
        pins.setdefault(canonicalize_name(name), []).append((Version(pinned), Marker(marker) if marker else None))
    return pins


def _declared(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        declared += [Requirement(text) for text in project["optional-dependencies"][extra]]
    return declared


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_declared_dependency_is_pinned_in_the_lock_within_its_bounds(lock: str) -> None:
    pins = _pins(lock)
    wrong = []
    for requirement in _declared(LOCKS[lock]):
        found = pins.get(canonicalize_name(requirement.name))
        if not found:
            wrong.append(f"{requirement.name} is missing")
            continue
        here = [pinned for pinned, marker in found if marker is None or marker.evaluate()]
        if not here or not all(requirement.specifier.contains(pinned, prereleases=True) for pinned in here):
            wrong.append(
                f"{requirement.name} is pinned at {', '.join(map(str, here))}, outside {requirement.specifier}"
            )
    assert wrong == [], f"{lock} disagrees with pyproject.toml ({'; '.join(wrong)}): run `make lock`"


def test_the_runtime_lock_pins_the_same_versions_as_the_dev_lock() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {name: found for name, found in runtime.items() if dev.get(name) != found} == {}


@pytest.mark.parametrize("name", PATCHED)
def test_the_patched_library_installed_is_the_locked_version(name: str) -> None:
    locked = [pinned for pinned, marker in _pins("requirements-dev.lock")[name] if marker is None or marker.evaluate()]
    assert Version(version(name)) in locked, (
        f"{name} {version(name)} is installed but the lock pins {locked}: run `make install`"
    )


def test_the_image_installs_the_locked_versions_and_resolves_nothing_else() -> None:
    steps = [line for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines() if "pip install" in line]
    assert steps[0].endswith("pip install -r requirements.lock"), steps
    assert all("-r requirements.lock" in step or "--no-deps" in step for step in steps), steps

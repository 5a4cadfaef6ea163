"""requirements.lock, what `make run` and the Dockerfile install: every runtime dependency of
pyproject.toml pinned within its bounds, every pin with hashes, nothing for development."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.processes import ROOT

LOCK = ROOT / "requirements.lock"
# `name==version`, an environment marker maybe (one pin per Python range), then its hashes.
PIN = re.compile(
    r"^([A-Za-z0-9._-]+)==(\S+)(?: ;[^\\\n]*[^\\\n ])?"
    r"((?: \\\n\s+--hash=sha256:[0-9a-f]{64})*)",
    re.M,
)
# Development tools that must never reach the service's environment.
DEVELOPMENT = {"pytest", "mypy", "ruff", "playwright", "hypothesis", "schemathesis", "matplotlib"}


def pins() -> dict[str, list[tuple[str, int]]]:
    """name → every (version, number of hashes) pinned for it."""
    found: dict[str, list[tuple[str, int]]] = {}
    for name, version, hashes in PIN.findall(LOCK.read_text()):
        found.setdefault(canonicalize_name(name), []).append((version, hashes.count("--hash=")))
    return found


def project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return data


def test_every_runtime_dependency_is_pinned_within_its_bounds() -> None:
    locked = pins()
    dependencies = project()["dependencies"]
    assert isinstance(dependencies, list)
    for line in dependencies:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        for version, _ in locked[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{name}=={version} is outside {requirement.specifier}: run `make lock`"
            )


def test_every_pin_carries_hashes() -> None:
    unhashed = [name for name, found in pins().items() if any(n == 0 for _, n in found)]
    assert unhashed == []
    assert len(pins()) > 40  # the pattern still reads the file


def test_the_lock_holds_no_development_tool() -> None:
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    listed = {
        canonicalize_name(Requirement(line).name) for group in extras.values() for line in group
    }
    assert listed >= DEVELOPMENT  # the names above are still the development tools
    assert not DEVELOPMENT & set(pins())

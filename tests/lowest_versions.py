"""Checks that `make test-lowest` really installs each declared minimum:
`python -m tests.lowest_versions REQUIREMENTS` (uv's lowest-direct resolution).

A lower bound that no resolution can reach (another dependency needs more) promises
what nobody tests; this names each such bound and exits 1.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def declared_minimums() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimums: dict[str, str] = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        for specifier in requirement.specifier:
            if specifier.operator in (">=", "=="):
                minimums[canonicalize_name(requirement.name)] = specifier.version
    return minimums


def resolved(requirements: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        name, separator, version = line.split("#")[0].strip().partition("==")
        if separator:
            pins[canonicalize_name(name)] = version.split(";")[0].strip()
    return pins


def main() -> None:
    pins = resolved(Path(sys.argv[1]))
    wrong = [
        f"{name}: pyproject.toml allows {minimum}, the lowest resolution is {pins.get(name)}"
        for name, minimum in sorted(declared_minimums().items())
        if name not in pins or Version(pins[name]) != Version(minimum)
    ]
    for line in wrong:
        print(f"lowest versions: {line}", file=sys.stderr)
    if wrong:
        raise SystemExit(1)
    print(f"lowest versions: all {len(pins)} pins, each direct dependency at its minimum")


if __name__ == "__main__":
    main()

"""The README's layout section names every module, and every name in it exists; unit tests
mirror the package (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "authsvc"
ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[\w./-]+)\s{2,}\S")


def layout_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()


def entries(lines: list[str]) -> dict[str, tuple[int, str]]:
    """Each named entry with its indent and its whole text (continuation lines included)."""
    found: dict[str, tuple[int, str]] = {}
    current: str | None = None
    for line in lines:
        match = ENTRY.match(line) or re.match(r"^(?P<indent> *)(?P<name>[\w./-]+/)$", line)
        if match and (current is None or len(match["indent"]) <= found[current][0]):
            current = match["name"]
            found[current] = (len(match["indent"]), line)
        elif current is not None:
            indent, text = found[current]
            found[current] = (indent, text + "\n" + line)
    return found


def package_entries() -> dict[str, str]:
    lines = layout_block()
    start = lines.index("src/authsvc/")
    inside = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        inside.append(line)
    return {name: text for name, (indent, text) in entries(inside).items() if indent == 2}


def modules(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.py") if p.name != "__init__.py")


def subpackages() -> list[str]:
    return sorted(p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def test_every_module_of_the_package_has_a_line() -> None:
    listed = package_entries()
    missing = [name for name in modules(PACKAGE) + subpackages() if name not in listed]
    assert missing == []


def test_every_line_names_a_module_that_exists() -> None:
    stale = [name for name in package_entries() if not (PACKAGE / name.rstrip("/")).exists()]
    assert stale == []


@pytest.mark.parametrize("package", [name.rstrip("/") for name in subpackages()])
def test_a_subpackage_line_names_each_of_its_modules(package: str) -> None:
    text = package_entries()[package + "/"]
    unnamed = [
        name
        for name in modules(PACKAGE / package)
        if not re.search(rf"\b{re.escape(name.removesuffix('.py'))}(\.py)?\b", text)
    ]
    assert unnamed == []


# Property tests that span several modules (cookies, tokens, redirects, emails).
CROSS_CUTTING = {"test_properties.py"}


def test_every_unit_test_module_is_named_for_the_module_it_tests() -> None:
    unit = ROOT / "tests" / "unit"
    strays = []
    for path in sorted(unit.rglob("test_*.py")):
        if path.name in CROSS_CUTTING:
            continue
        tested = path.stem.removeprefix("test_")
        beside = PACKAGE / path.parent.relative_to(unit)
        names = [name.removesuffix(".py") for name in modules(beside)] if beside.is_dir() else []
        if not any(tested == name or tested.startswith(name + "_") for name in names):
            strays.append(path.relative_to(ROOT).as_posix())
    assert strays == []


def test_the_tests_line_names_every_folder_of_tests() -> None:
    text = entries(layout_block())["tests/"][1]
    folders = sorted(
        p.name + "/" for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.rglob("test_*.py"))
    )
    assert folders and [folder for folder in folders if folder not in text] == []


def test_every_top_level_path_in_the_layout_exists() -> None:
    top = [name for name, (indent, _) in entries(layout_block()).items() if indent == 0]
    assert "src/authsvc/" in top
    assert [name for name in top if not (ROOT / name.rstrip("/")).exists()] == []

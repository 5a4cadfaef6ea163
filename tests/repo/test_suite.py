"""What the suite says about itself stays true, and CI cannot pass by skipping.

docs/security.md maps each requirement to the tests that prove it and lists the findings
still open, each pinned by a strict xfail; a renamed test or a fixed finding must not leave
the document naming a test that is gone or calling an ordinary test an xfail. Section
headings inside a test module announce tests: a heading with none under it is a claim too.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.processes import ROOT, require_binary

TESTS = ROOT / "tests"
SECURITY = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
# `# --- name ---…` or `# Name ---…`: a comment line that ends in a rule of dashes.
HEADING = re.compile(r"^# .*-{10,}$")

Function = ast.FunctionDef | ast.AsyncFunctionDef


@cache
def functions_in(relative: str) -> dict[str, Function]:
    tree = ast.parse((ROOT / relative).read_text())
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, Function) and node.name.startswith("test_")
    }


def xfail_marks(function: Function) -> list[ast.Call]:
    """The `@pytest.mark.xfail(...)` decorators of a test."""
    return [
        decorator
        for decorator in function.decorator_list
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.xfail"
    ]


def is_strict(mark: ast.Call) -> bool:
    return any(
        keyword.arg == "strict"
        and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is True
        for keyword in mark.keywords
    )


def module_paths() -> list[str]:
    return sorted(path.relative_to(ROOT).as_posix() for path in TESTS.rglob("test_*.py"))


def open_findings() -> str:
    """The *Open findings* section of docs/security.md, up to what was fixed since."""
    text = SECURITY.read_text()
    section = text[text.index("## Open findings") :]
    return section[: section.index("Fixed since")]


def test_every_test_docs_security_md_names_exists() -> None:
    references = REFERENCE.findall(SECURITY.read_text())
    assert references
    missing = [
        f"{module}::{name}"
        for module, name in references
        if not (ROOT / module).exists() or name not in functions_in(module)
    ]
    assert missing == []


def test_the_open_findings_are_exactly_the_xfail_tests_of_the_suite() -> None:
    xfails = {
        (module, name)
        for module in module_paths()
        for name, function in functions_in(module).items()
        if xfail_marks(function)
    }
    assert set(REFERENCE.findall(open_findings())) == xfails


def test_every_xfail_is_strict_so_a_fix_turns_the_suite_red() -> None:
    loose = [
        f"{module}::{name}"
        for module in module_paths()
        for name, function in functions_in(module).items()
        if not all(is_strict(mark) for mark in xfail_marks(function))
    ]
    assert loose == []


def empty_sections(path: Path) -> list[str]:
    """Headings followed by nothing but blank lines and comments up to the next one or the end."""
    empty: list[str] = []
    heading: str | None = None
    for line in [*path.read_text().splitlines(), "# end " + "-" * 10]:
        if HEADING.match(line):
            if heading is not None:
                empty.append(heading)
            heading = line
        elif heading is not None and line.strip() and not line.startswith("#"):
            heading = None
    return empty


def test_no_section_heading_in_a_test_module_is_left_empty() -> None:
    found = {module: empty_sections(ROOT / module) for module in module_paths()}
    assert {module: headings for module, headings in found.items() if headings} == {}


MISSING = "authsvc-test-no-such-binary"


def outcome_of_requiring_a_missing_binary() -> BaseException:
    """What `require_binary` raises: a skip must not escape, or it would skip this test."""
    try:
        require_binary(MISSING)
    except BaseException as exc:  # pytest's outcomes are BaseExceptions
        return exc
    raise AssertionError(f"{MISSING} was found")


def test_in_ci_a_missing_binary_fails_its_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    outcome = outcome_of_requiring_a_missing_binary()
    assert isinstance(outcome, pytest.fail.Exception) and MISSING in str(outcome)


def test_outside_ci_a_missing_binary_skips_its_test_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    outcome = outcome_of_requiring_a_missing_binary()
    assert isinstance(outcome, pytest.skip.Exception) and MISSING in str(outcome)


def test_the_ci_script_exports_ci_before_it_runs_anything_of_the_project() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    first_make = next(
        index for index, line in enumerate(lines) if line.startswith(("make ", "step make "))
    )
    assert "export CI=true" in lines[:first_make]

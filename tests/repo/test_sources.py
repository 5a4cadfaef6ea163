"""Every Python file of the repository compiles on every supported interpreter.

Python 3.13.0 refuses a docstring that holds a lone surrogate (its compiler re-encodes
docstrings to strip their indentation), so a `\\ud800` escape in one made the service
unimportable there. Ordinary string literals with such escapes are fine everywhere.
"""

from __future__ import annotations

import ast

from tests.processes import ROOT

SOURCES = sorted(
    path
    for folder in ("src", "tests", "bench", "alembic")
    for path in (ROOT / folder).rglob("*.py")
    if "node_modules" not in path.parts
)


def docstrings(tree: ast.AST) -> list[str]:
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    texts = (
        ast.get_docstring(node, clean=False) for node in ast.walk(tree) if isinstance(node, owners)
    )
    return [text for text in texts if text]


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_the_repository_has_python_sources() -> None:
    assert ROOT / "src" / "authsvc" / "routes" / "context.py" in SOURCES


def test_no_docstring_holds_a_lone_surrogate() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if not all(encodable(text) for text in docstrings(ast.parse(path.read_text(), str(path))))
    ]
    assert offenders == []


def test_every_file_compiles_on_this_interpreter() -> None:
    offenders = []
    for path in SOURCES:
        try:
            compile(path.read_text(), str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError, UnicodeError) as exc:
            offenders.append(f"{path.relative_to(ROOT)}: {exc!r}")
    assert offenders == []

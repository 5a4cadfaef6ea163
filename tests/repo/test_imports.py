"""No import cycles in src/authsvc: every import counts, `TYPE_CHECKING` and function-local too.

A cycle hidden behind `if TYPE_CHECKING:` or inside a function still means two modules that
cannot be understood (or moved) one without the other. The graph is read from the source
with `ast`, so nothing is imported to build it.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Set
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "authsvc"


def module_names(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (`authsvc.users.tables`)."""
    names: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, source: str, is_package: bool, known: Set[str]) -> set[str]:
    """The package's modules that `source` (module `name`) imports, wherever it does."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()

    def owner(dotted: str) -> str | None:
        # `import authsvc.users.tables` or an attribute of a module: its innermost module.
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [owner(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # `from authsvc import forward_auth` imports a module, not a name of the package.
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else owner(origin)
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target is not None)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    names = module_names(package)
    return {
        name: imported_modules(name, path.read_text(), path.name == "__init__.py", names.keys())
        for name, path in names.items()
    }


def cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, and self-imports
    (Tarjan's algorithm, iterative), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in graph:
                    continue
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))
    return sorted(found)


def describe(component: list[str], graph: Mapping[str, Set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return f"{' <-> '.join(component)} ({'; '.join(edges)})"


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph(PACKAGE)
    assert "authsvc.settings" in graph and len(graph) > 40
    found = [describe(component, graph) for component in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_settings_imports_only_value_modules() -> None:
    """The ground floor: what the settings import imports no other authsvc module."""
    graph = import_graph(PACKAGE)
    assert graph["authsvc.settings"] == {
        "authsvc.database_url",
        "authsvc.redirects",
        "authsvc.users.prisma_map",
    }
    for module in graph["authsvc.settings"]:
        assert graph[module] == set(), module


# --- the cycle finder and the import reader, on small made-up inputs ------------------


def test_a_two_module_cycle_is_found_among_acyclic_modules() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "d": {"a"}}
    assert cycles(graph) == [["a", "b"]]


def test_a_longer_cycle_a_self_import_and_a_second_component_are_each_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "s": {"s"}, "x": {"y"}, "y": {"x"}, "z": {"a"}}
    assert cycles(graph) == [["a", "b", "c"], ["s"], ["x", "y"]]


def test_a_graph_without_cycles_has_none() -> None:
    graph = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a", "outside"}}
    assert cycles(graph) == []


def test_imports_count_under_type_checking_in_functions_and_relative() -> None:
    known = {"authsvc", "authsvc.settings", "authsvc.users", "authsvc.users.tables", "authsvc.x"}
    source = """
from typing import TYPE_CHECKING
from authsvc import x
if TYPE_CHECKING:
    from authsvc.settings import Settings
def f():
    from .tables import UserTables
import authsvc.users.tables.deep
"""
    found = imported_modules("authsvc.users.records", source, False, known)
    assert found == {"authsvc.x", "authsvc.settings", "authsvc.users.tables"}


def test_relative_imports_resolve_from_a_package_and_its_parent() -> None:
    known = {"authsvc", "authsvc.users", "authsvc.users.tables", "authsvc.settings"}
    source = "from . import tables\nfrom ..settings import Settings\nfrom .. import nothing\n"
    found = imported_modules("authsvc.users", source, True, known)
    assert found == {"authsvc.users.tables", "authsvc.settings", "authsvc"}


def test_a_cycle_through_the_real_reader_is_reported(tmp_path: Path) -> None:
    package = tmp_path / "authsvc"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "a.py").write_text("from authsvc.inner import b\n")
    (package / "inner" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n"
    )
    assert cycles(import_graph(package)) == [["authsvc.a", "authsvc.inner.b"]]

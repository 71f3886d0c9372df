"""host's modules import one another without cycles.

Read statically (``ast``), so the test sees every import whatever runs. What counts as a
dependency of module A on module B:

- ``import host.b``, ``from host.b import x``, ``from .b import x``, ``from . import b``
  (``b`` a submodule), at module level *or inside a function*: an import put off for
  start-up speed (``host.cli`` does that) is still a dependency, and a cycle through it
  still means two modules that cannot be understood one without the other;
- except what sits under ``if TYPE_CHECKING:``: only the type checker runs it, and
  annotations name a class without needing its module loaded (the issue's "type-checking-
  only imports aside"; ``host.lifecycle`` takes ``Sandbox`` that way).

``host/__init__.py`` re-exports lazily through ``importlib`` (``host._WHERE``): not an
import statement, so it adds no edge, and no module of host imports the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.framework.paths import REPO_ROOT

PACKAGE = "host"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that the module ``name`` imports, TYPE_CHECKING aside."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:  # the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)  # from . import b
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(tree)
    return (found & known) - {name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted((REPO_ROOT / PACKAGE).rglob("*.py"))
    known = {module_name(path) for path in paths}
    return {
        module_name(path): imported(
            ast.parse(path.read_text(), str(path)),
            module_name(path),
            path.name == "__init__.py",
            known,
        )
        for path in paths
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) for each strongly connected set."""
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in path:
                cycle = [*path[path.index(target) :], target]
                if not any(set(cycle) == set(seen) for seen in found):
                    found.append(cycle)
            elif target not in done:
                walk(target, [*path, target])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            walk(start, [start])
    return found


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert "host.transport" in graph["host.run_cli"]  # module level
    assert "host.run_cli" in graph["host.cli"]  # inside a function: counted
    assert "host.codecache" in graph["host.cachesink"]  # from . import codecache
    assert "host.codecache" in graph["host.bench.fuel"]  # from .. import codecache
    assert "host.supervisor" not in graph["host.lifecycle"]  # under TYPE_CHECKING only


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_host_has_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)

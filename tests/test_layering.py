"""The layering rule, read statically from every ``.py`` file of each package.

::

    host ──────────▶ protocol ◀────────── guestproc ──▶ guestproc.engine ──▶ standard library
      (trusted)      (shared leaf)        (untrusted side)  (the interpreter)

- ``host`` never imports ``guestproc``: it never decodes a module itself;
- ``protocol`` imports neither ``host`` nor ``guestproc``;
- ``guestproc`` never imports ``host``, and nothing it imports brings in ``pydantic``;
- ``guestproc.engine`` imports nothing but itself and the standard library (no msgpack).

Every ``import`` and ``from ... import`` counts, wherever it stands (inside a function, under
``if TYPE_CHECKING``), relative ones resolved to absolute names, and so do
``importlib.import_module("...")`` calls with a literal name. What the guest imports when it
really starts is ``test_the_guest_imports_only_msgpack_the_engine_and_the_standard_library``
(tests/host/test_guest_process.py).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.framework.paths import REPO_ROOT

PACKAGES = ("host", "protocol", "guestproc")


def module_name(path: Path) -> str:
    """``host/bench/load.py`` -> ``host.bench.load``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def files_of(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def imports_in(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module name ``source`` (the text of ``module``) imports, with its line.

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule); a relative import
    is resolved against ``module``'s package.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level - 1 >= len(base_parts):
                    raise AssertionError(f"{module}:{node.lineno}: relative import beyond the top")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                base = node.module
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


@cache
def imports_of(package: str) -> dict[str, list[tuple[int, str]]]:
    """For every module of ``package``: the modules it imports, with their lines (read once
    per run: several tests ask)."""
    found = {}
    for path in files_of(package):
        name = module_name(path)
        found[name] = list(imports_in(path.read_text(), name, path.name == "__init__.py"))
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module}:{line} imports {name}"
        for module, imported in imports_of(package).items()
        for line, name in imported
        if any(within(name, other) for other in forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("host", ("guestproc",)),
        ("protocol", ("host", "guestproc")),
        ("guestproc", ("host",)),
    ],
)
def test_a_package_never_imports_the_layers_it_must_not(
    package: str, forbidden: tuple[str, ...]
) -> None:
    found = violations(package, forbidden)
    assert found == [], "\n".join(found)


def test_the_engine_imports_only_itself_and_the_standard_library() -> None:
    engine = "guestproc.engine"
    outside = [
        f"{module}:{line} imports {name}"
        for module, imported in imports_of("guestproc").items()
        if within(module, engine)
        for line, name in imported
        if not within(name, engine) and name.partition(".")[0] not in sys.stdlib_module_names
    ]
    assert outside == [], "\n".join(outside)


def test_nothing_the_guest_imports_brings_in_pydantic() -> None:
    """Follow the imports of every ``guestproc`` module through this repository's modules."""
    graph = {m: i for package in PACKAGES for m, i in imports_of(package).items()}
    path_to: dict[str, list[str]] = {m: [m] for m in graph if within(m, "guestproc")}
    pending = list(path_to)
    offenders = []
    while pending:
        module = pending.pop()
        for _line, name in graph[module]:
            if within(name, "pydantic") or within(name, "pydantic_core"):
                offenders.append(" -> ".join([*path_to[module], name]))
            elif name in graph and name not in path_to:
                path_to[name] = [*path_to[module], name]
                pending.append(name)
    assert offenders == [], "\n".join(offenders)


# -- the checker itself ---------------------------------------------------------------------


def test_imports_are_found_wherever_they_stand_and_relative_ones_resolved() -> None:
    source = (
        "import os.path\n"
        "from . import sibling\n"
        "from ..guestproc import engine\n"
        "def later():\n"
        "    from .. import host\n"
        "    import importlib\n"
        "    importlib.import_module('msgpack')\n"
    )
    names = {name for _line, name in imports_in(source, "protocol.inner.module", False)}
    assert names == {
        "os.path",
        "protocol.inner",
        "protocol.inner.sibling",
        "protocol.guestproc",
        "protocol.guestproc.engine",
        "protocol",
        "protocol.host",
        "importlib",
        "msgpack",
    }
    in_package = {name for _line, name in imports_in("from .x import y", "guestproc", True)}
    assert in_package == {"guestproc.x", "guestproc.x.y"}


def test_every_package_has_modules_to_check() -> None:
    for package in PACKAGES:
        modules = imports_of(package)
        assert package in modules and len(modules) > 3, package
    assert any(m.startswith("guestproc.engine.") for m in imports_of("guestproc"))

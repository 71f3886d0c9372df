"""The repository keeps its promises: fixtures match their sources, the README and CI agree.

- Every committed .wasm (fixtures and examples) is listed with its source in
  tests/fixtures/SHA256SUMS, and both hashes still match: editing a source without running
  tests/fixtures/build.sh fails here, with no compiler needed.
- With the recorded toolchain installed, build.sh --check rebuilds everything byte for byte.
- The instruction each fixture exists to exercise is really in its binary (wasm-objdump).
- The build does not depend on what else is on PATH (clang 14 runs any wasm-opt it finds).
- ``kindling bench serve``'s guest modules are package data, byte for byte the examples
  they copy, so that an installed package runs the bench as a checkout does.
- README.md opens with exactly the two documented set-up commands, and .ci/run runs the
  same test command in a venv it creates anew.
- Every third-party module the tests import is declared in pyproject.toml, with an upper
  bound: a fresh venv gets everything the suite needs, and nothing newer than it was run with.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.framework.paths import EXAMPLES_DIR, FIXTURES_DIR, REPO_ROOT

DEMO_COMMAND = "pip install -e '.[test]' && kindling run examples/hello.wasm"
TEST_COMMAND = "pytest"

MANIFEST = FIXTURES_DIR / "SHA256SUMS"
BUILD_TOOLS = ("clang", "wasm-ld", "wat2wasm")


def manifest() -> dict[str, str]:
    """path (relative to the repository) -> recorded sha256."""
    entries = {}
    for line in MANIFEST.read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        entries[path] = digest
    return entries


def sources() -> list[str]:
    found = [
        *FIXTURES_DIR.glob("c/*.c"),
        *FIXTURES_DIR.glob("wat/*.wat"),
        *EXAMPLES_DIR.glob("*.c"),
        *EXAMPLES_DIR.glob("*.wat"),
    ]
    return sorted(str(p.relative_to(REPO_ROOT)) for p in found)


def binaries() -> list[str]:
    found = [*FIXTURES_DIR.glob("wasm/*.wasm"), *EXAMPLES_DIR.glob("*.wasm")]
    return sorted(str(p.relative_to(REPO_ROOT)) for p in found)


def binary_for(source: str) -> str:
    stem = source.rsplit("/", 1)[1].rsplit(".", 1)[0]
    return (
        f"examples/{stem}.wasm"
        if source.startswith("examples/")
        else f"tests/fixtures/wasm/{stem}.wasm"
    )


def test_the_bench_modules_are_package_data_copied_from_examples() -> None:
    from host.bench.serve import MODULES, bench_module

    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert f"{MODULES}/*.wasm" in setuptools["package-data"]["host.bench"]
    for name in ("shout.wasm", "add.wasm"):
        shipped = bench_module(name)
        assert shipped.parent == REPO_ROOT / "host" / "bench" / MODULES
        assert shipped.read_bytes() == (EXAMPLES_DIR / name).read_bytes(), (
            f"host/bench/{MODULES}/{name} differs from examples/{name}: copy it again"
        )


def test_every_source_and_binary_is_in_the_manifest() -> None:
    recorded = set(manifest())
    expected = set(sources()) | {binary_for(s) for s in sources()}
    assert expected - recorded == set(), "not in SHA256SUMS: run tests/fixtures/build.sh"
    assert set(binaries()) - expected == set(), "a committed .wasm has no source"
    assert recorded - expected == set(), "SHA256SUMS lists files that are gone"


@pytest.mark.parametrize("path", sorted(set(sources()) | set(binaries())))
def test_file_matches_its_recorded_hash(path: str) -> None:
    actual = hashlib.sha256((REPO_ROOT / path).read_bytes()).hexdigest()
    assert manifest().get(path) == actual, (
        f"{path} changed since the fixtures were last built: run tests/fixtures/build.sh"
    )


@pytest.mark.slow
def test_build_reproduces_committed_binaries() -> None:
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (Debian: clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt)"
        )
    recorded = (FIXTURES_DIR / "TOOLCHAIN").read_text().splitlines()
    clang = subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout
    if clang.splitlines()[0] != recorded[0]:
        pytest.skip(
            f"needs the recorded toolchain {recorded[0]!r}, found {clang.splitlines()[0]!r}"
        )
    result = subprocess.run(
        ["bash", str(FIXTURES_DIR / "build.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


WASM_OPT_TRAP = """#!/bin/sh
echo "wasm-opt was run: $*" >&2
exit 1
"""


def test_build_ignores_a_wasm_opt_on_path(tmp_path: Path) -> None:
    """clang 14 runs binaryen's wasm-opt after an optimised link when it finds one, which
    rewrites the code and drops the name section; wasi-cc must never let it."""
    missing = [tool for tool in ("clang", "wasm-ld") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: clang lld wasi-libc)")
    trap_dir = tmp_path / "bin"
    trap_dir.mkdir()
    (trap_dir / "wasm-opt").write_text(WASM_OPT_TRAP)
    (trap_dir / "wasm-opt").chmod(0o755)
    built = tmp_path / "hello.wasm"
    result = subprocess.run(
        [
            "bash",
            str(FIXTURES_DIR / "wasi-cc"),
            str(built),
            "examples/hello.c",
            "-Wl,--strip-debug",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{trap_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wasm-opt was run" not in result.stderr
    assert b"\x04name" in built.read_bytes(), "the name section is gone"


# fixture -> (function whose body must contain it, instructions); None means anywhere.
INSTRUCTIONS = {
    "trap_unreachable": ("__original_main", ["unreachable"]),
    "trap_div_zero": ("__original_main", ["i32.div_s"]),
    "trap_int_overflow": ("__original_main", ["i32.div_s"]),
    "trap_oob_memory": ("__original_main", ["i32.load"]),
    "trap_stack_exhausted": ("recurse", ["call <recurse>"]),
    "deep_recursion": ("sum_to", ["call <sum_to>"]),
    "trap_invalid_conversion": (None, ["i32.trunc_f32_s"]),
    "trap_undefined_element": (None, ["call_indirect"]),
    "trap_uninitialized_element": (None, ["call_indirect"]),
    "trap_indirect_call_type_mismatch": (None, ["call_indirect"]),
    "memory_grow_bomb": (None, ["memory.grow"]),
    "qsort_fnptr": ("__original_main", ["call_indirect"]),
    "switch_dispatch": ("run", ["br_table"]),
    "i64_math": (
        "__original_main",
        ["i64.div_s", "i64.div_u", "i64.rotl", "i64.popcnt", "i64.clz", "i64.ctz", "i64.shr_s"],
    ),
    "floats": (
        "__original_main",
        ["f64.sqrt", "f64.nearest", "f64.ceil", "f64.trunc", "f32.sqrt", "f64.promote_f32"],
    ),
}


def disassembly(path: str, function: str | None) -> list[str]:
    """Instructions (text after "| "), of one function or the whole module, call indices dropped."""
    out = subprocess.run(
        ["wasm-objdump", "-d", str(REPO_ROOT / path)], capture_output=True, text=True, check=True
    ).stdout
    lines, inside = [], function is None
    for line in out.splitlines():
        if re.search(r" func\[\d+\] <", line):
            if function is not None:
                inside = line.rstrip().endswith(f"<{function}>:")
            continue
        if inside and "| " in line:
            instruction = line.split("| ", 1)[1].strip()
            lines.append(re.sub(r"^call \d+ ", "call ", instruction))
    return lines


@pytest.mark.parametrize("name", sorted(INSTRUCTIONS))
def test_fixture_contains_its_instruction(name: str) -> None:
    if shutil.which("wasm-objdump") is None:
        pytest.skip("needs wasm-objdump (Debian package wabt)")
    function, wanted = INSTRUCTIONS[name]
    code = disassembly(f"tests/fixtures/wasm/{name}.wasm", function)
    assert code, f"{name}: no function {function!r} in the disassembly"
    for instruction in wanted:
        assert any(line == instruction or line.startswith(instruction + " ") for line in code), (
            f"{name}: {function or 'the module'} has no {instruction}"
        )


# -- README and CI ----------------------------------------------------------------------------


def readme_setup_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```[a-z]*\n(.*?)```", text, re.S)
    assert block, "README.md has no code block"
    assert text.index(block.group(0)) < 1500, "the set-up commands are not near the top"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_the_two_setup_commands() -> None:
    assert readme_setup_commands() == [DEMO_COMMAND, TEST_COMMAND]


def test_demo_module_is_committed() -> None:
    """The demo must run on a machine without a C compiler."""
    assert (EXAMPLES_DIR / "hello.wasm").is_file()


def test_ci_runs_the_readme_commands_in_a_new_venv() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    commands = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    assert any(line.startswith("python3 -m venv --clear ") for line in commands)
    assert DEMO_COMMAND in commands
    assert TEST_COMMAND in " ".join(commands).split()
    subprocess.run(["bash", "-n", str(REPO_ROOT / ".ci" / "run")], check=True)


def declared_requirements() -> dict[str, str]:
    """Distribution name (normalised) -> its requirement, from dependencies and the test extra."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        declared[normalised(name)] = requirement
    return declared


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_is_declared() -> None:
    ours = {"host", "guestproc", "protocol", "tests", "benchmarks"}
    distributions = importlib.metadata.packages_distributions()
    declared = declared_requirements()
    undeclared = []
    for folder in ("host", "guestproc", "protocol", "tests", "benchmarks"):
        for module in imported_top_level_modules(REPO_ROOT / folder):
            if module in ours or module in sys.stdlib_module_names:
                continue
            names = {normalised(n) for n in distributions.get(module, [module])}
            if not names & declared.keys():
                undeclared.append(f"{folder}: {module}")
    assert undeclared == [], "imported but not in pyproject.toml: " + ", ".join(sorted(undeclared))


def test_every_test_requirement_has_an_upper_bound() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    unbounded = [
        r for r in project["optional-dependencies"]["test"] if "<" not in r and "==" not in r
    ]
    assert unbounded == []


def test_readme_has_a_changelog() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert "## Changelog" in text
    assert "## [Unreleased]" in text or "### [Unreleased]" in text

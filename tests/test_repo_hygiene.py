"""The repository keeps its promises: fixtures match their sources, the README and CI agree.

- Every committed .wasm (fixtures and examples) is listed with its source in
  tests/fixtures/SHA256SUMS, and both hashes still match: editing a source without running
  tests/fixtures/build.sh fails here, with no compiler needed.
- With the recorded toolchain installed, build.sh --check rebuilds everything byte for byte.
- The instruction each fixture exists to exercise is really in its binary (wasm-objdump).
- README.md opens with exactly the two documented set-up commands, and .ci/run runs the
  same test command.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

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


def test_ci_runs_the_readme_test_command() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    commands = [line.strip() for line in script.splitlines()]
    assert any(TEST_COMMAND in line for line in commands if not line.startswith("#"))
    subprocess.run(["bash", "-n", str(REPO_ROOT / ".ci" / "run")], check=True)


def test_readme_has_a_changelog() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert "## Changelog" in text
    assert "## [Unreleased]" in text or "### [Unreleased]" in text

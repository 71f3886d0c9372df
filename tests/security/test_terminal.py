"""Issue 12, point 7: text a module supplies (import and export names) reaches the host's own
messages escaped, never raw: a module must not clear the screen or forge a line of the
host's output. The program's own console output passes untouched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from host.errors import InvokeRefused
from host.supervisor import Host
from protocol.models import printable
from tests.framework.binary import name, section, uleb, vec
from tests.framework.guest import kindling_command, kindling_environment

FORGED = "\x1b[2J\x1b[H\x1b[32mguest exited 0\x1b[0m\u202e"
ESCAPED = "\\x1b[2J\\x1b[H\\x1b[32mguest exited 0\\x1b[0m\\u202e"

HEADER = b"\0asm" + (1).to_bytes(4, "little")
NO_ARGUMENTS = vec(b"\x60" + vec() + vec())  # type section payload: one type, () -> ()


def exporting(export: str) -> bytes:
    """A module whose one function, doing nothing, is exported as ``export``."""
    return (
        HEADER
        + section(1, NO_ARGUMENTS)
        + section(3, vec(uleb(0)))
        + section(7, vec(name(export) + b"\x00" + uleb(0)))
        + section(10, vec(uleb(2) + b"\x00\x0b"))
    )


def importing(module: str, field: str) -> bytes:
    """A module that imports a function ``module.field`` no host provides."""
    return (
        HEADER
        + section(1, NO_ARGUMENTS)
        + section(2, vec(name(module) + name(field) + b"\x00" + uleb(0)))
    )


def test_printable_escapes_what_would_drive_a_terminal() -> None:
    assert printable(FORGED) == ESCAPED
    assert printable("add: 2 + 3 = 5 ✓") == "add: 2 + 3 = 5 ✓"  # printable text is kept


@pytest.mark.slow
async def test_an_export_name_in_a_refusal_is_escaped() -> None:
    async with Host(cache=False) as host:
        sandbox = await host.launch(exporting(FORGED))
        with pytest.raises(InvokeRefused) as refused:
            await sandbox.invoke("nope")
        await sandbox.stop()
    text = str(refused.value)
    assert "\x1b" not in text and "\u202e" not in text
    assert ESCAPED in text


@pytest.mark.slow
def test_kindling_run_reports_an_import_name_escaped(tmp_path: Path) -> None:
    module = tmp_path / "forged.wasm"
    module.write_bytes(importing("env", FORGED))
    done = subprocess.run(
        [*kindling_command(), "run", str(module)],
        env=kindling_environment(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert b"\x1b" not in done.stderr and "\u202e".encode() not in done.stderr
    assert ESCAPED.encode() in done.stderr, done.stderr


def trapping_with_names(outer: str, inner: str) -> bytes:
    """A command whose ``_start`` (function 0, named ``outer``) calls function 1 (named
    ``inner``), which traps: ``unreachable``."""
    names = vec(uleb(0) + name(outer), uleb(1) + name(inner))
    return (
        HEADER
        + section(1, NO_ARGUMENTS)
        + section(3, vec(uleb(0), uleb(0)))
        + section(7, vec(name("_start") + b"\x00" + uleb(0)))
        + section(10, vec(uleb(4) + b"\x00\x10\x01\x0b", uleb(3) + b"\x00\x00\x0b"))
        + section(0, name("name") + b"\x01" + uleb(len(names)) + names)
    )


@pytest.mark.slow
def test_a_trap_prints_a_wasm_backtrace_with_the_names_escaped(tmp_path: Path) -> None:
    """Issue 14.4: a trap shows the functions it went through, innermost first, named by the
    module's name section, escaped, on stderr and in --report."""
    module = tmp_path / "trap.wasm"
    module.write_bytes(trapping_with_names("main", FORGED))
    done = subprocess.run(
        [*kindling_command(), "run", "--report", str(module)],
        env=kindling_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.splitlines()
    assert lines[:4] == [
        "kindling: guest trapped: unreachable",
        "wasm backtrace:",
        f"  0: wasm function 1 ({ESCAPED})",
        "  1: wasm function 0 (main)",
    ]
    report = json.loads(lines[-1])
    assert report["backtrace"] == [f"0: wasm function 1 ({ESCAPED})", "1: wasm function 0 (main)"]
    assert "\x1b" not in done.stderr

"""Issue 12, point 7: text a module supplies (import and export names) reaches the host's own
messages escaped, never raw: a module must not clear the screen or forge a line of the
host's output. The program's own console output passes untouched."""

from __future__ import annotations

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

"""Endings and their exit statuses: the CLI's documented table, and every copy of it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from host import cli, endings, exitcodes
from host.endings import Ending, EndingKind, Limit
from host.exitcodes import MEANINGS, CliExitCode
from tests.framework.paths import REPO_ROOT

ONE_OF_EACH = [
    Ending.exited(0),
    Ending.exited(3),
    Ending.load_failure("decode", "bad magic"),
    Ending.trapped("unreachable", "unreachable"),
    *(Ending.limit(limit, "over") for limit in Limit),
    Ending.protocol_error("garbage"),
    Ending.signalled(int(signal.SIGSEGV)),
    Ending.stopped("interrupted"),
]


def test_text_forms() -> None:
    assert [e.text for e in ONE_OF_EACH] == [
        "exited(0)",
        "exited(3)",
        "load_failure(decode)",
        "trapped(unreachable)",
        "limit(memory)",
        "limit(cpu)",
        "limit(wall)",
        "limit(fuel)",
        "limit(output)",
        "protocol_error",
        "signalled(11)",
        "stopped",
    ]


def test_every_non_exit_ending_has_its_own_status() -> None:
    others = [e for e in ONE_OF_EACH if e.kind is not EndingKind.EXITED]
    statuses = [e.status for e in others]
    assert len(set(statuses)) == len(statuses)
    assert all(118 <= s <= 255 for s in statuses)
    assert CliExitCode.USAGE not in statuses and CliExitCode.HOST_FAILURE not in statuses


@pytest.mark.parametrize(
    ("code", "status"), [(0, 0), (7, 7), (255, 255), (256, 255), (2**32 - 1, 255)]
)
def test_exit_codes_pass_through_up_to_255(code: int, status: int) -> None:
    ending = Ending.exited(code)
    assert ending.status == status
    assert ending.exit_code == code


def test_signals_are_128_plus_n() -> None:
    assert Ending.signalled(9).status == 137
    assert Ending.signalled(9).exit_code is None


def test_every_status_is_a_member_with_its_meaning() -> None:
    assert list(MEANINGS) == list(CliExitCode)
    assert [int(code) for code in CliExitCode] == sorted(CliExitCode)  # the table's order
    assert all(not isinstance(e.status, CliExitCode) for e in ONE_OF_EACH[:2])  # exited(n): n
    assert all(isinstance(e.status, CliExitCode) for e in ONE_OF_EACH[2:-2])


def written_as(ending: Ending) -> str:
    """The ending as the table writes it: ``limit(memory)`` exactly, ``trapped(kind)``."""
    if ending.detail is None or ending.kind is EndingKind.LIMIT:
        return ending.text
    row = {"exited": "n", "signalled": "n", "load_failure": "stage", "trapped": "kind"}
    return f"{ending.kind.value}({row[ending.kind.value]})"


def test_the_table_says_what_ending_status_gives() -> None:
    """``Ending.status`` and the ending column of the table are two statements of one
    mapping: they must agree, row for row, and every row but the command's own failures
    must be some ending's."""
    table = {ending: status for ending, status, _ in exitcodes.rows() if ending != "-"}
    seen = set()
    for ending in ONE_OF_EACH:
        status = ending.status
        if ending.kind is EndingKind.SIGNALLED:
            assert status == CliExitCode.SIGNAL_BASE + int(ending.detail or 0)
            status = CliExitCode.SIGNAL_BASE
        if ending.kind is EndingKind.EXITED:
            expected = "n"
        else:
            expected = exitcodes.status_text(CliExitCode(status))
        assert table[written_as(ending)] == expected, ending
        seen.add(written_as(ending))
    assert seen == set(table)
    assert [row[1] for row in exitcodes.rows() if row[0] == "-"] == ["2", "119"]


def test_the_table_is_in_the_help_and_the_docstrings() -> None:
    table = exitcodes.text_table()
    assert table in cli.RUN_HELP
    for module in (cli, endings, exitcodes):
        text = module.__doc__ or ""
        assert "{exit_statuses}" not in text
        assert "\n".join("  " + line for line in table.splitlines()) in text, module


def test_the_readme_holds_the_table_exactly() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert exitcodes.markdown_table() in readme
    start = readme.index("| ending | exit status | meaning |")
    end = readme.index("\n\n", start)
    assert readme[start : end + 1] == exitcodes.markdown_table()
    printed = subprocess.run(
        [sys.executable, "-m", "host.exitcodes", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert printed.stdout == exitcodes.markdown_table()


def test_the_design_document_agrees_on_the_statuses() -> None:
    """docs/design.md explains where each ending comes from; its status column is a copy."""
    design = (REPO_ROOT / "docs" / "design.md").read_text()
    statuses = {}
    for line in design.splitlines():
        match = re.match(r"\| `(\w+(?:\(\w+\))?)` \|.*\| ([^|]+) \|$", line)
        if match:
            statuses[match.group(1)] = match.group(2).replace(" ", "")
    for ending, status, _ in exitcodes.rows()[1:]:
        if ending != "-":
            assert statuses.pop(ending) == status, ending
    assert list(statuses) == ["exited(code)"]


def test_reasons_are_one_line() -> None:
    ending = Ending.trapped("unreachable", "first line\nsecond line")
    assert ending.reason() == "guest trapped: first line second line"
    assert Ending.load_failure("link", "unknown import").reason() == (
        "cannot load the module (link): unknown import"
    )


def test_host_exports_its_public_names_lazily() -> None:
    import subprocess
    import sys

    import host

    assert sorted(host.__all__) == sorted(host._WHERE)
    for name in host.__all__:
        assert getattr(host, name) is not None
    code = "import sys, host\nprint(sorted(m for m in ('pydantic', 'asyncio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""Endings and their exit statuses: the CLI's documented table."""

from __future__ import annotations

import signal

import pytest

from host import cli, endings
from host.endings import Ending, EndingKind, Limit

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
    assert endings.STATUS_USAGE not in statuses and endings.STATUS_HOST_FAILURE not in statuses


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


def test_the_table_is_in_the_help_and_the_docstrings() -> None:
    for ending in ONE_OF_EACH[2:]:
        kind = ending.text if ending.kind is EndingKind.LIMIT else ending.kind.value
        status = "128+n" if ending.kind is EndingKind.SIGNALLED else str(ending.status)
        for text in (cli.RUN_HELP, endings.__doc__ or "", cli.__doc__ or ""):
            lines = [line for line in text.splitlines() if kind in line]
            assert any(status in line for line in lines), (kind, status, text[:200])


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

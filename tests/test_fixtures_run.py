"""Every fixture under `kindling run`: expected output, ending and exit status, no leaks.

Each case comes from tests/framework/cases.py; the exit status for each ending from
tests/framework/expectations.py. The guest_factory fixture fails a test that leaves a process
or a file descriptor behind.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.framework import Guest, GuestFactory
from tests.framework import expectations as ex
from tests.framework.cases import CASES, CASES_BY_ID, Case
from tests.framework.paths import EXAMPLES_DIR, fixture

pytestmark = pytest.mark.slow  # every fixture under a real `kindling run`

# A guest stopped by --timeout must be gone within this much of its deadline.
TIMEOUT_SLACK_SECONDS = 15.0


def run_case(guest_factory: GuestFactory, case: Case) -> Guest:
    return guest_factory.run(
        fixture(case.fixture),
        case.args,
        stdin=case.stdin,
        env=case.env,
        memory=case.memory,
        timeout=case.timeout,
        invoke=case.invoke,
        extra_options=case.extra_options,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_fixture(guest_factory: GuestFactory, case: Case) -> None:
    guest = run_case(guest_factory, case)
    guest.assert_ending(case.ending)
    case.check_stdout(guest.stdout)
    assert case.stderr_contains in guest.stderr, guest.describe()
    if case.timeout is not None:
        assert guest.elapsed is not None
        assert guest.elapsed < case.timeout + TIMEOUT_SLACK_SECONDS, guest.describe()


def test_demo_example(guest_factory: GuestFactory) -> None:
    """The README's demo guest."""
    guest = guest_factory.run(EXAMPLES_DIR / "hello.wasm", ["from", "the tests"])
    guest.assert_ending("exited(0)")
    assert guest.stdout == (
        b"Hello from a WebAssembly guest running under Kindling!\n"
        b"argument 1: from\nargument 2: the tests\n"
        b"There are 1229 primes below 10000.\n"
    )


def test_report_is_one_json_line_with_timings(guest_factory: GuestFactory) -> None:
    guest = guest_factory.run(fixture("hello"))
    guest.assert_ending("exited(0)")
    assert guest.report is not None
    assert guest.report[ex.REPORT_EXIT_CODE] == 0
    peak = guest.report[ex.REPORT_PEAK_MEMORY]
    assert isinstance(peak, int) and peak >= 0, guest.report
    timings = [k for k in guest.report if k.endswith(ex.REPORT_TIMING_SUFFIXES)]
    assert timings, f"no timing in the report: {guest.report}"
    assert all(isinstance(guest.report[k], int | float) for k in timings), guest.report


def test_without_report_there_is_no_json_line(guest_factory: GuestFactory) -> None:
    guest = guest_factory.run(fixture("hello"), report=False)
    assert guest.returncode == 0, guest.describe()
    assert guest.stderr == b"this line goes to stderr\n", guest.describe()


def test_unread_stdin_does_not_hang_the_host(guest_factory: GuestFactory) -> None:
    guest = guest_factory.run(fixture("hello"), stdin=b"x" * (1024 * 1024))
    guest.assert_ending("exited(0)")


def test_every_ending_has_an_exit_status() -> None:
    """The exit status table in tests/framework/expectations.py is complete and unambiguous."""
    unfixed = sorted(k for k, v in ex.ENDING_EXIT_STATUS.items() if v is None)
    assert not unfixed, f"no exit status fixed yet for: {unfixed} (tests/framework/expectations.py)"
    statuses = list(ex.ENDING_EXIT_STATUS.values())
    assert len(set(statuses)) == len(statuses), f"two endings share an exit status: {statuses}"


def test_guest_killed_by_a_signal_is_classified(guest_factory: GuestFactory) -> None:
    """SIGKILL to the guest process ends it as signalled(9); the host reports and exits."""
    guest = guest_factory.build(fixture("infinite_loop"), timeout=60)
    guest.spawn()
    victim = guest.wait_for_guest_process()
    time.sleep(0.5)  # let it get into its loop
    victim.send_signal(signal.SIGKILL)
    guest.wait()
    guest.assert_ending(f"signalled({int(signal.SIGKILL)})")


def test_guest_does_not_outlive_a_killed_host(guest_factory: GuestFactory) -> None:
    """SIGKILL to the host process (which cannot clean up) still takes its guest down."""
    guest = guest_factory.build(fixture("infinite_loop"), timeout=60)
    guest.spawn()
    orphan = guest.wait_for_guest_process()
    time.sleep(0.5)  # let it get into its loop
    guest.mark_killed()
    guest.ps.send_signal(signal.SIGKILL)
    # Before collecting the host's output: an orphan still holding its pipes would block that.
    _gone, alive = psutil.wait_procs([orphan], timeout=10)
    assert not alive, f"guest process {orphan.pid} outlived its host by 10 s"
    guest.wait()


def test_siblings_survive_each_other(guest_factory: GuestFactory) -> None:
    """A trapping, a flooding and a spinning guest beside an ordinary one: each ends its own way."""
    plan = {
        "hello": CASES_BY_ID["hello"],
        "trap": CASES_BY_ID["trap_oob_memory"],
        "flood": CASES_BY_ID["output_flood"],
        "loop": CASES_BY_ID["infinite_loop"],
    }
    guests = {
        name: guest_factory.build(
            fixture(case.fixture),
            case.args,
            timeout=case.timeout,
            memory=case.memory,
            extra_options=case.extra_options,
        )
        for name, case in plan.items()
    }
    for guest in guests.values():
        guest.spawn()
    for name, guest in guests.items():
        guest.wait()
        guest.assert_ending(plan[name].ending)
        plan[name].check_stdout(guest.stdout)


# -- modules that cannot run: a clear one-line error, never a traceback --------------------

# (type () -> i32) with a body that returns nothing: well-formed, but invalid.
INVALID_MODULE = bytes.fromhex("0061736d 01000000  010501600001 7f  03020100  0a040102000b")

BAD_MODULES = {
    "not_wasm": (
        b"#!/bin/sh\necho this is not WebAssembly\n",
        ("magic", "not a", "wasm", "webassembly"),
    ),
    "empty": (b"", ("empty", "magic", "unexpected end", "truncated", "eof")),
    "truncated": (None, ("unexpected end", "truncated", "eof", "length", "out of bounds")),
    "invalid": (INVALID_MODULE, ("type mismatch", "invalid", "valid")),
}


@pytest.mark.parametrize("name", sorted(BAD_MODULES))
def test_bad_module_is_a_load_failure(
    guest_factory: GuestFactory, tmp_path: Path, name: str
) -> None:
    content, hints = BAD_MODULES[name]
    if content is None:
        content = fixture("hello").read_bytes()[:200]
    module = tmp_path / f"{name}.wasm"
    module.write_bytes(content)
    guest = guest_factory.run(module)
    assert_load_failure(guest, hints)


def test_missing_module_file(guest_factory: GuestFactory, tmp_path: Path) -> None:
    guest = guest_factory.run(tmp_path / "no-such-module.wasm")
    assert_load_failure(guest, ("no such file", "not found", "does not exist", "cannot open"))


def test_unknown_import_is_a_load_failure(guest_factory: GuestFactory) -> None:
    guest = guest_factory.run(fixture("unknown_import"))
    assert_load_failure(guest, ("import", "nowhere", "missing"))


def assert_load_failure(guest: Guest, hints: tuple[str, ...]) -> None:
    text = guest.stderr.decode("utf-8", "replace")
    assert "Traceback (most recent call last)" not in text, guest.describe()
    status = ex.ENDING_EXIT_STATUS["load_failure"]
    if status is not None:
        assert guest.returncode == status, guest.describe()
    else:
        assert guest.returncode not in (0, None), guest.describe()
    reason = [line for line in guest.stderr_text_lines if line.strip()]
    assert len(reason) == 1, f"expected one line of reason\n{guest.describe()}"
    assert any(h in reason[0].lower() for h in hints), (
        f"reason names no cause {hints}\n{guest.describe()}"
    )
    assert guest.stdout == b"", guest.describe()

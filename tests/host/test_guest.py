"""Real guests through the host's API: every ending classified, the guest contained.

Each test spawns real guest processes (``python -m guestproc``, or the test-only
``tests/guests/misbehave.py`` for broken protocol), through the ``guest``, ``new_guest`` and ``run``
fixtures (conftest), and the ``no_leaks`` fixture checks that none is left behind and no
descriptor stays open.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from host.api import run_guest
from host.config import GuestConfig
from host.endings import Ending
from host.errors import GuestEnded, GuestTrapped, IllegalAction, InvokeRefused
from host.framebudget import FRAME_BURST, FRAME_RATE
from host.guest import Guest, GuestState
from host.stdio import BytesStdin, CapturedConsole
from protocol.messages import MAX_FILE_CALLS, MAX_INVOKE_STDIN
from tests.framework.paths import fixture
from tests.host.conftest import Guests, Run, SpinningGuest, misbehaving

pytestmark = pytest.mark.slow  # every test here runs real guest processes

# -- endings of real programs ---------------------------------------------------------------


async def test_hello_exits_0_with_its_output(run: Run) -> None:
    report = await run("hello")
    assert report.ending.text == "exited(0)"
    assert run.stdout == b"Hello from a Kindling guest!\ngoodbye\n"
    assert run.stderr == b"this line goes to stderr\n"
    assert report.results is None
    for key in (
        "spawn_ms",
        "decode_ms",
        "validate_ms",
        "precompile_ms",
        "instantiate_ms",
        "run_ms",
    ):
        assert report.timings[key] >= 0, key
    assert report.peak_memory is not None and report.peak_memory > 1024 * 1024
    assert report.output_bytes == len(run.stdout) + len(run.stderr)


@pytest.mark.parametrize(("how", "code"), [("exit", 3), ("return", 7), ("exit", 300)])
async def test_exit_codes(run: Run, how: str, code: int) -> None:
    report = await run(fixture("exit_code").read_bytes(), args=[how, str(code)])
    assert report.ending.text == f"exited({code})"
    assert report.ending.exit_code == code
    assert report.ending.status == min(code, 255)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("trap_div_zero", "integer_divide_by_zero"),
        ("trap_unreachable", "unreachable"),
        ("trap_oob_memory", "out_of_bounds_memory"),
        ("trap_stack_exhausted", "call_stack_exhausted"),
    ],
)
async def test_traps(run: Run, name: str, kind: str) -> None:
    report = await run(name)
    assert report.ending.text == f"trapped({kind})"
    assert report.ending.message  # says what happened


async def test_deep_recursion_is_fine(run: Run) -> None:
    report = await run("deep_recursion", args=["15000"])
    assert report.ending.text == "exited(0)"
    assert run.stdout == b"sum(1..15000) = 112507500 by 15000 nested calls\n"


@pytest.mark.parametrize(
    ("module", "stage", "words"),
    [
        (b"not wasm at all", "decode", "magic"),
        (b"", "decode", ""),
        (
            bytes.fromhex("0061736d0100000001050160 00017f 03020100 0a040102000b".replace(" ", "")),
            "validation",
            "type",
        ),
    ],
)
async def test_load_failures(run: Run, module: bytes, stage: str, words: str) -> None:
    report = await run(module)
    assert report.ending.text == f"load_failure({stage})"
    assert words in report.ending.message.lower()
    assert report.ending.status == 120


async def test_unknown_import_is_a_link_failure(run: Run) -> None:
    report = await run("unknown_import")
    assert report.ending.text == "load_failure(link)"
    assert "import" in report.ending.message


async def test_initial_memory_over_the_budget(run: Run) -> None:
    report = await run("hello", memory=65536)
    assert report.ending.text == "limit(memory)"
    assert "pages" in report.ending.message


async def test_memory_grow_stops_at_the_budget(run: Run) -> None:
    report = await run("memory_grow_bomb", invoke="grow_all", memory=5 * 1024 * 1024)
    assert report.ending.text == "exited(0)"
    assert report.results is not None
    pages = report.results[0].signed()
    assert isinstance(pages, int) and 2 <= pages <= 80


async def test_wall_clock_timeout(run: Run) -> None:
    started = time.monotonic()
    report = await run("infinite_loop", timeout=1.0)
    elapsed = time.monotonic() - started
    assert report.ending.text == "limit(wall)"
    assert run.stdout == b"spinning forever\n"  # flushed although the loop never writes again
    assert elapsed < 10


async def test_cpu_limit(run: Run) -> None:
    report = await run("infinite_loop", cpu=1, timeout=30)
    assert report.ending.text == "limit(cpu)"
    assert report.cpu_seconds is not None and report.cpu_seconds >= 1


async def test_output_quota(run: Run) -> None:
    report = await run("output_flood", max_output=100_000)
    assert report.ending.text == "limit(output)"
    assert len(run.stdout) + len(run.stderr) == 100_000
    assert run.stdout.startswith(b"flood line 0: ")


async def test_console_output_is_batched(run: Run) -> None:
    report = await run("output_flood", max_output=2_000_000)
    assert report.ending.text == "limit(output)"
    lines = run.stdout.count(b"\n")
    frames = run.guest.frames_received
    assert lines > 20_000
    assert frames < lines / 20, f"{frames} frames for {lines} lines"


async def test_stdin_relay(run: Run) -> None:
    data = bytes(range(256)) * 500
    report = await run("cat", stdin=data)
    assert report.ending.text == "exited(0)"
    assert run.stdout == data
    assert run.stderr == f"cat: {len(data)} bytes\n".encode()


async def test_env_and_args_reach_the_program_and_nothing_else(run: Run) -> None:
    report = await run("args_env", args=["one", "-x"], env={"GREETING": "hi"})
    assert report.ending.text == "exited(0)"
    assert run.stdout == (b"argc=3\narg[1]=one\narg[2]=-x\nenvc=1\nenv GREETING=hi\n")


# -- invoking exports -------------------------------------------------------------------------


async def test_invoke_results_are_printed_signed(run: Run) -> None:
    report = await run("exports", invoke="divmod", numbers=(7, -2))
    assert report.ending.text == "exited(0)"
    assert report.results is not None
    assert [r.display() for r in report.results] == ["-3", "1"]


async def test_one_guest_serves_many_calls_and_survives_traps_and_refusals(guest: Guest) -> None:
    await guest.boot(fixture("exports").read_bytes())
    assert guest.state is GuestState.READY
    assert [r.signed() for r in await guest.invoke("add", [2, 3])] == [5]
    with pytest.raises(GuestTrapped) as trapped:
        await guest.invoke("divmod", [1, 0])
    assert trapped.value.ending.text == "trapped(integer_divide_by_zero)"
    with pytest.raises(InvokeRefused, match="no function named 'nope'"):
        await guest.invoke("nope")
    with pytest.raises(InvokeRefused, match="takes 2 arguments"):
        await guest.invoke("add", [1])
    with pytest.raises(InvokeRefused, match="must be an integer"):
        await guest.invoke("add", [1.5, 2])
    assert [r.signed() for r in await guest.invoke("mul64", [-4, 10**12])] == [-4 * 10**12]
    assert guest.state is GuestState.READY
    ending = await guest.stop()
    assert ending.text == "stopped"
    assert guest.exit_status is not None and guest.exit_status.code == 0


async def test_requests_in_the_wrong_state_are_refused(new_guest: Guests) -> None:
    guest = new_guest()
    with pytest.raises(IllegalAction):
        guest.submit_invoke("add", [1, 2])
    guest.begin()
    with pytest.raises(IllegalAction):
        guest.submit_invoke("add", [1, 2])  # before any Boot
    await guest.handshake()
    await guest.boot(fixture("exports").read_bytes())
    with pytest.raises(IllegalAction):
        guest.submit_load(b"")
    with pytest.raises(TypeError):
        await guest.invoke("add", ["1", 2])  # type: ignore[list-item]


async def test_a_guest_that_ended_says_so(guest: Guest) -> None:
    with pytest.raises(GuestEnded) as ended:
        await guest.boot(b"garbage")
    assert ended.value.ending.text == "load_failure(decode)"
    assert (await guest.stop()).text == "load_failure(decode)"
    with pytest.raises(GuestEnded):
        await guest.invoke("f")


async def test_stop_and_terminate_mid_run(spinning_guest: SpinningGuest) -> None:
    spinning = await spinning_guest()
    spinning.guest.end(Ending.stopped("enough"))
    with pytest.raises(GuestEnded) as ended:
        await spinning.invocation
    assert ended.value.ending.text == "stopped"
    assert ended.value.ending.message == "enough"


async def test_a_signal_from_outside_is_classified(spinning_guest: SpinningGuest) -> None:
    spinning = await spinning_guest()
    os.kill(spinning.process.pid, signal.SIGSEGV)
    with pytest.raises(GuestEnded) as ended:
        await spinning.invocation
    assert ended.value.ending.text == "signalled(11)"
    assert ended.value.ending.status == 139


async def test_siblings_do_not_disturb_each_other(new_guest: Guests) -> None:
    async def one(name: str, **config: Any) -> str:
        guest = new_guest(GuestConfig(**config), console=CapturedConsole())
        report = await run_guest(guest, fixture(name).read_bytes())
        return report.ending.text

    endings = await asyncio.gather(
        one("hello"),
        one("trap_oob_memory"),
        one("output_flood", max_output=200_000),
        one("infinite_loop", timeout=1.5),
        one("hello"),
    )
    assert list(endings) == [
        "exited(0)",
        "trapped(out_of_bounds_memory)",
        "limit(output)",
        "limit(wall)",
        "exited(0)",
    ]


# -- guests that break the protocol ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("garbage", "not valid msgpack"),
        ("oversized", "over the cap"),
        ("unknown_tag", "Gimme"),
        ("wrong_types", "Exited.code"),
        ("wrong_id", "for request"),
        ("not_a_map", "must be a map"),
        ("flood", "frame flood"),
        ("console_while_idle", "Console"),
        ("console_before_starting", "Console before the module's code started"),
        ("ready_unannounced", "Ready without Starting"),
        ("code_uninvited", "keeps no code cache"),
        ("stdin_twice", "second StdinRequest"),
        ("close_pipes", "closed its pipe"),
        ("exit_silently", "without reporting"),
        ("truncated", "inside a frame"),
        ("bad_version", "protocol version"),
    ],
)
async def test_protocol_violations_are_killed(run: Run, mode: str, words: str) -> None:
    started = time.monotonic()
    report = await run(b"\0asm\1\0\0\0", launcher=misbehaving(mode), timeout=30)
    assert report.ending.text == "protocol_error", report.ending
    assert words in report.ending.message
    assert report.ending.status == 127
    elapsed = time.monotonic() - started
    assert elapsed < 15
    if mode == "flood":
        # Cut off at the burst plus the rate: the host stops reading once it has decided.
        assert run.guest.frames_received <= FRAME_BURST + FRAME_RATE * elapsed + 1


async def test_a_guest_past_its_unanswered_file_calls_is_killed(run: Run, tmp_path: Path) -> None:
    report = await run(
        b"\0asm\1\0\0\0", launcher=misbehaving("file_calls_flood"), dirs=[str(tmp_path)]
    )
    assert report.ending.text == "protocol_error", report.ending
    assert f"more than {MAX_FILE_CALLS} FileCalls unanswered" in report.ending.message


async def test_no_hello_is_a_protocol_error(run: Run) -> None:
    report = await run(b"", launcher=misbehaving("no_hello"), handshake_timeout=1.0)
    assert report.ending.text == "protocol_error"
    assert "no Hello" in report.ending.message


async def test_never_answering_boot_meets_the_timeout(run: Run) -> None:
    report = await run(b"", launcher=misbehaving("silent"), timeout=1.0)
    assert report.ending.text == "limit(wall)"


async def test_a_console_frame_over_the_per_frame_cap(run: Run) -> None:
    report = await run(b"", launcher=misbehaving("big_console"))
    assert report.ending.text == "limit(output)"
    assert run.stdout == b""


async def test_a_process_that_dies_of_a_signal(run: Run) -> None:
    report = await run(b"", launcher=misbehaving("segfault"))
    assert report.ending.text == "signalled(11)"


async def test_the_memory_backstop(run: Run) -> None:
    report = await run(b"", launcher=misbehaving("hog_memory"), memory=1024 * 1024)
    assert report.ending.text == "limit(memory)"
    assert report.peak_memory is not None and report.peak_memory < 400 * 1024 * 1024


async def test_the_cpu_rlimit_set_by_the_sandbox(run: Run) -> None:
    report = await run(b"", launcher=misbehaving("spin"), cpu=1, timeout=30)
    assert report.ending.text == "limit(cpu)"


class CountedStdin(BytesStdin):
    """Counts the reads the host makes of it (one per StdinRequest)."""

    reads = 0

    async def read(self, size: int) -> bytes:
        self.reads += 1
        return await super().read(size)


async def test_stdin_given_with_the_invoke_is_read_without_asking(new_guest: Guests) -> None:
    stdin = CountedStdin(b"not this")
    console = CapturedConsole()
    guest = new_guest(stdin=stdin, console=console)
    await guest.start()
    await guest.boot(fixture("cat").read_bytes())
    data = bytes(range(256)) * 100
    try:
        await guest.submit_invoke("_start", argv=[b"cat"], stdin=data)
    except GuestEnded as ended:
        assert ended.ending.text == "exited(0)"
    await guest.stop()
    assert console.stdout == data and stdin.reads == 0  # no StdinRequest reached it


async def test_an_invoke_brings_at_most_its_share_of_stdin(guest: Guest) -> None:
    await guest.boot(fixture("cat").read_bytes())
    with pytest.raises(ValueError, match="at most"):
        guest.submit_invoke("_start", stdin=b"x" * (MAX_INVOKE_STDIN + 1))


async def test_stdin_is_not_read_unless_asked(new_guest: Guests) -> None:
    stdin = CountedStdin(b"x" * 100_000)
    guest = new_guest(stdin=stdin)
    await guest.start()
    await guest.boot(fixture("hello").read_bytes())
    assert (await guest.run_command()).text == "exited(0)"
    await guest.stop()
    assert stdin.reads == 0

"""The containment matrix: every way a guest can go wrong, against a live host and sibling.

For each row: a sibling sandbox is running (the ``sandbox`` fixture, on the ``host`` fixture,
conftest), the culprit goes wrong, and then

- the host is still up (this test process, which runs it, gets to the end),
- the sibling still answers invocations,
- the caller got an error or ending naming the cause, classified as the row expects,
- no process or descriptor is left behind (``no_leaks``, conftest).

Guests that break the protocol run the test-only ``tests/guests/misbehave.py``; the rest are
real modules in guests forked from templates through the public ``Host`` API.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from host.config import GuestConfig
from host.endings import Ending
from host.errors import GuestEnded, GuestError, GuestTrapped
from host.guest import Guest, GuestState
from host.supervisor import Host, Sandbox
from host.template import TemplateError
from tests.framework.paths import fixture

from .conftest import misbehaving

pytestmark = pytest.mark.slow  # every row starts templates and guests


@dataclass(frozen=True)
class Row:
    id: str
    ending: str  # the classified ending, exactly
    words: str  # what the error or ending's reason must mention


async def outcome(action: Awaitable[Any]) -> Ending:
    """How an action on the culprit ended: the ending it returned or raised."""
    try:
        result = await action
    except (GuestEnded, GuestTrapped) as exc:
        return exc.ending
    assert isinstance(result, Ending), result
    return result


async def busy(sandbox: Sandbox) -> asyncio.Task[Ending]:
    """Start the culprit's endless loop and return once it is inside it."""
    task = asyncio.get_running_loop().create_task(outcome(sandbox.run()))
    assert sandbox.guest is not None
    while sandbox.guest.state is not GuestState.RUNNING:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    return task


def signal_row(sig: int) -> Callable[[Host], Awaitable[Ending]]:
    async def culprit(host: Host) -> Ending:
        sandbox = await host.launch(fixture("infinite_loop"))
        task = await busy(sandbox)
        os.kill(sandbox.pid or 0, sig)
        return await task

    return culprit


async def sigstop(host: Host) -> Ending:
    sandbox = await host.launch(fixture("infinite_loop"), timeout=1)
    task = await busy(sandbox)
    os.kill(sandbox.pid or 0, signal.SIGSTOP)  # someone else stops it: the deadline holds
    return await task


async def cpu_limit(host: Host) -> Ending:
    sandbox = await host.launch(fixture("infinite_loop"), cpu=1)
    return await outcome(sandbox.run())


async def memory_past_engine(host: Host) -> Ending:
    # A Wasm malloc bomb meets the engine's budget first (malloc returns NULL: see the
    # memory_bomb fixture's case); memory taken past the engine meets RLIMIT_DATA.
    guest = Guest(GuestConfig(memory=1024 * 1024), launcher=misbehaving("hog_memory"))
    guest.begin()
    return await outcome(guest_run(guest))


async def stack(host: Host) -> Ending:
    sandbox = await host.launch(fixture("trap_stack_exhausted"))
    return await outcome(sandbox.run())


async def endless(host: Host) -> Ending:
    sandbox = await host.launch(fixture("infinite_loop"), timeout=1)
    return await outcome(sandbox.run())


async def fuel(host: Host) -> Ending:
    sandbox = await host.launch(fixture("infinite_loop"), fuel=100_000)
    return await outcome(sandbox.run())


async def flood(host: Host) -> Ending:
    sandbox = await host.launch(fixture("output_flood"), max_output="64KiB")
    return await outcome(sandbox.run())


async def guest_run(guest: Guest) -> Ending:
    try:
        guest.submit_load(b"\0asm\1\0\0\0")
        guest.submit_boot()
        return await guest.run_command()
    finally:
        await guest.stop()


def protocol_row(mode: str, **config: Any) -> Callable[[Host], Awaitable[Ending]]:
    async def culprit(host: Host) -> Ending:
        guest = Guest(GuestConfig(**config), launcher=misbehaving(mode))
        guest.begin()
        return await outcome(guest_run(guest))

    return culprit


async def template_dies(host: Host) -> Ending:
    sandbox = await host.launch(fixture("infinite_loop"))
    template = host.templates()[-1]  # the sibling's (exports) came first
    assert template.pid is not None
    os.kill(template.pid, signal.SIGKILL)
    await template.guest.wait()
    with pytest.raises(TemplateError, match="the template is gone"):
        await template.fork()
    # Its guest lives on (it is the host's child), and the next launch gets a new template.
    assert sandbox.state.value == "running" and sandbox.guest is not None
    assert sandbox.guest.ending is None
    again = await host.launch(fixture("infinite_loop"), fuel=1000)
    ending = await outcome(again.run())
    await sandbox.stop()
    return ending


ROWS: list[tuple[Row, Callable[[Host], Awaitable[Ending]]]] = [
    (Row("SIGKILL", "signalled(9)", "SIGKILL"), signal_row(signal.SIGKILL)),
    (Row("SIGSEGV", "signalled(11)", "SIGSEGV"), signal_row(signal.SIGSEGV)),
    (Row("SIGBUS", "signalled(7)", "SIGBUS"), signal_row(signal.SIGBUS)),
    (Row("SIGXCPU", "limit(cpu)", "CPU time"), cpu_limit),
    (Row("SIGSTOP from outside", "limit(wall)", "timeout"), sigstop),
    (Row("memory bomb", "limit(memory)", "memory"), memory_past_engine),
    (Row("stack exhaustion", "trapped(call_stack_exhausted)", "call stack"), stack),
    (Row("infinite loop", "limit(wall)", "timeout"), endless),
    (Row("fuel exhaustion", "limit(fuel)", "fuel"), fuel),
    (Row("output flood", "limit(output)", "output quota"), flood),
    (Row("garbage frames", "protocol_error", "msgpack"), protocol_row("garbage")),
    (Row("oversized frame", "protocol_error", "over the cap"), protocol_row("oversized")),
    (Row("frame flood", "protocol_error", "frame flood"), protocol_row("flood")),
    (Row("closes its pipes", "protocol_error", "closed its pipe"), protocol_row("close_pipes")),
    (Row("never answers Boot", "limit(wall)", "timeout"), protocol_row("silent", timeout=1)),
    (Row("template dies", "limit(fuel)", "fuel"), template_dies),
]


@pytest.mark.parametrize(("row", "culprit"), ROWS, ids=[row.id for row, _ in ROWS])
async def test_containment(
    host: Host, sandbox: Sandbox, row: Row, culprit: Callable[[Host], Awaitable[Ending]]
) -> None:
    sibling = sandbox
    assert await sibling.invoke("add", 2, 3) == [5]
    ending = await asyncio.wait_for(culprit(host), 30)
    assert ending.text == row.ending, ending
    assert row.words.lower() in ending.reason().lower(), ending.reason()
    # The sibling never noticed.
    for value in range(20):
        assert await sibling.invoke("add", value, 1) == [value + 1]
    assert sibling.state.value == "running"


def test_a_guest_error_is_never_anything_but_a_guest_error() -> None:
    # The matrix's errors all derive from GuestError: a caller can catch one class.
    assert issubclass(GuestEnded, GuestError) and issubclass(TemplateError, GuestError)

"""Templates: guests forked ready from a loaded, booted module; the host as their parent.

Each test runs real template and guest processes, most from the ``template`` fixture (a
template of exports.wasm); the ``no_leaks`` fixture (conftest) fails any test that leaves a
process or a descriptor behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import msgpack
import psutil
import pytest

from host.config import GuestConfig
from host.endings import Ending
from host.errors import GuestEnded
from host.guest import GuestState
from host.template import Template, TemplateError
from protocol.messages import Fork
from protocol.models import InvalidMessage, parse_template_reply
from tests.framework.paths import REPO_ROOT, fixture

pytestmark = pytest.mark.slow  # every test here starts a template and forks guests


async def test_forked_guests_are_ready_children_of_the_host(template: Template) -> None:
    guests = [await template.fork() for _ in range(3)]
    for guest in guests:
        await guest.handshake()
        assert guest.state is GuestState.READY
        assert psutil.Process(guest.pid).ppid() == os.getpid()  # not the template's
        assert guest.pid != template.pid
    assert [r[0].signed() for r in [await g.invoke("sub", [3, 5]) for g in guests]] == [-2] * 3
    for guest in guests:
        assert str(await guest.stop()) == "stopped"
        assert guest.exit_status is not None and guest.exit_status.code == 0
    assert template.forked == 3


async def test_one_guest_dying_spares_its_siblings_and_the_template(template: Template) -> None:
    first, second = await template.fork(), await template.fork()
    await first.handshake()
    await second.handshake()
    await first.invoke("add", [1, 2])
    # Killing one guest leaves the other, and the template, untouched.
    first.end(Ending.stopped("test"))
    await first.wait()
    assert (await second.invoke("add", [40, 2]))[0].signed() == 42
    third = await template.fork()
    await third.handshake()
    assert (await third.invoke("add", [1, 1]))[0].signed() == 2
    await second.stop()
    await third.stop()


@pytest.mark.parametrize(
    ("sig", "ending"),
    [
        (signal.SIGKILL, "signalled(9)"),
        (signal.SIGSEGV, "signalled(11)"),
        (signal.SIGBUS, "signalled(7)"),
    ],
)
async def test_exit_statuses_of_forked_guests_reach_the_host_exactly(
    template: Template, sig: int, ending: str
) -> None:
    guest = await template.fork()
    await guest.handshake()
    os.kill(guest.pid or 0, sig)
    assert str(await guest.wait()) == ending
    assert guest.exit_status is not None and guest.exit_status.signal == sig
    assert guest.exit_status.max_rss > 0  # wait4's rusage: the host reaped it itself


async def test_a_dead_template_fails_its_forks_and_spares_its_guests(template: Template) -> None:
    guest = await template.fork()
    await guest.handshake()
    assert template.pid is not None
    os.kill(template.pid, signal.SIGKILL)
    await template.guest.wait()
    await asyncio.sleep(0.05)
    assert not template.alive
    with pytest.raises(TemplateError, match="gone"):
        await template.fork()
    # The guest was the host's child all along: it goes on.
    assert (await guest.invoke("add", [2, 2]))[0].signed() == 4
    await guest.stop()


async def test_a_module_that_does_not_load_ends_the_template_with_its_reason() -> None:
    with pytest.raises(GuestEnded) as caught:
        await Template.start(b"\0asm\x01\0\0\0\x01\x05", GuestConfig())
    assert caught.value.ending.text == "load_failure(decode)"


async def test_the_template_reply_must_name_a_guest_it_forked(template: Template) -> None:
    guest = await template.fork()
    await guest.handshake()
    assert guest.pid is not None and template.pid is not None
    template.known_pid = {guest.pid}.__contains__
    assert template._bad_pid(guest.pid) == f"it named pid {guest.pid}, a guest the host already has"
    assert "not a child" in (template._bad_pid(os.getppid()) or "")
    for bad in (True, -5, "7", 1):  # the schema refuses these before any pid check
        with pytest.raises(InvalidMessage):
            parse_template_reply({"type": "Forked", "id": 1, "pid": bad})
    # A child of ours indeed, but not one in its guests' PID namespace: the template itself
    # (issue 12, point 5), or the holder of that namespace.
    assert "not in its guests' PID namespace" in (template._bad_pid(template.pid) or "")
    assert template.holder is not None
    assert "the holder" in (template._bad_pid(template.holder.pid) or "")
    await guest.stop()


@pytest.mark.parametrize(
    ("frame", "descriptors"),
    [
        (msgpack.packb(Fork(id=1).wire()), 1),  # a Fork needs the guest's two pipe ends
        (msgpack.packb(Fork(id=1).wire()), 0),
        (msgpack.packb([1, 2, 3]), 2),  # not a Fork at all
    ],
    ids=["one descriptor", "no descriptor", "not a map"],
)
async def test_a_fork_request_the_protocol_does_not_allow_ends_the_template(
    template: Template, frame: bytes, descriptors: int
) -> None:
    """The template reads its control socket itself (``recvmsg``, not ``socket.recv_fds``):
    a request it cannot take ends it, and it forks nothing."""
    children_before = {child.pid for child in psutil.Process().children()}
    ends = os.pipe()
    try:
        await template._send(frame, list(ends[:descriptors]))
    finally:
        for end in ends:
            os.close(end)
    # It exits (HOST_BROKE_PROTOCOL), or the host sees its control socket close first and
    # ends it: either way it is gone, having forked nothing.
    await asyncio.wait_for(template.guest.wait(), 10)
    assert not template.alive
    # Its one child is the holder of its guests' PID namespace, where it has one.
    holder = {template.holder.pid} if template.holder is not None else set()
    assert {child.pid for child in psutil.Process().children()} - children_before <= holder


HOST_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from host.template import Template
    from host.config import GuestConfig

    async def main():
        module = open(sys.argv[1], "rb").read()
        template = await Template.start(module, GuestConfig())
        guests = [await template.fork() for _ in range(3)]
        for guest in guests:
            await guest.handshake()
            guest.submit_invoke("_start")  # an endless loop: they never read again
        await asyncio.sleep(0.1)  # the template's Namespace comes before its first Forked
        holder = template.holder.pid if template.holder else template.pid
        print(template.pid, holder, *(g.pid for g in guests), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_no_guest_outlives_a_killed_host() -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(fixture("infinite_loop"))],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert host.stdout is not None
    pids = [int(p) for p in host.stdout.readline().split()]  # template, holder, guests
    assert len(pids) == 5
    time.sleep(0.2)  # the guests are spinning in Wasm now
    host.kill()
    host.wait()
    host.stdout.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
        time.sleep(0.02)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []


async def test_a_template_that_stops_reading_does_not_block_the_host(template: Template) -> None:
    """Forks beyond the socket's room wait in the host; the event loop keeps running (before
    issue 10 the host blocked in sendmsg inside the loop and never read again)."""
    assert template.pid is not None
    os.kill(template.pid, signal.SIGSTOP)
    try:
        forks = [asyncio.ensure_future(template.fork()) for _ in range(200)]
        started = time.monotonic()
        await asyncio.sleep(0.2)
        assert time.monotonic() - started < 1.0, "the event loop was blocked"
        assert not any(fork.done() for fork in forks)
    finally:
        os.kill(template.pid, signal.SIGCONT)
    guests = await asyncio.gather(*forks)
    answers = await asyncio.gather(*(g.invoke("add", [i, 1]) for i, g in enumerate(guests)))
    assert [a[0].signed() for a in answers] == [i + 1 for i in range(200)]
    await asyncio.gather(*(g.stop() for g in guests))

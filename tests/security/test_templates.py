"""A template the host cannot trust: one that forks processes the host never asked for.

A template decodes and compiles untrusted modules, and may fork (``clone`` is in its
filter), so an engine bug there lets an attacker fork at will, as early as the module's
first byte. Its processes are the host's children (``CLONE_PARENT``) and, where the kernel
allows, in a PID namespace whose init (the holder) the template made before it read the
module (``guestproc.cloning``): ending the holder kills them all. A stray is reaped by no one
but the host, and keeps the holder from finishing its exit until it is: the host reaps
those it was never told of (``host.holder``), hunts them down while its templates serve
(``StrayHunt``), and never waits without a deadline.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import signal
import time

import msgpack
import psutil
import pytest

from host import fleet
from host.errors import GuestEnded
from host.holder import StrayHunt
from host.supervisor import Host
from host.template import Template
from protocol.messages import Fork
from tests.guests import subverted
from tests.host.conftest import (  # the host tests' fixtures: leaks checked
    EXPORTS,
    no_leaks,
    template,
)

pytestmark = pytest.mark.slow  # a template, and guests forked from it
__all__ = ["no_leaks", "template"]  # fixtures, used by name


async def test_a_guest_the_host_was_never_told_of_cannot_hold_it_at_release(
    template: Template,
) -> None:
    """The template forks a guest for a Fork the host's bookkeeping never sent. The host
    ends the template for answering a request that is not pending; the guest, once it
    exits, is a zombie child of the host, and keeps the namespace's init from finishing
    its exit until it is reaped. ``release`` reaps it, and the holder, at once."""
    guest = await template.fork()  # by now the template has said where its namespace is
    await guest.handshake()
    await guest.stop()
    if template.holder is None:
        pytest.skip("the kernel gave the template no PID namespace (kindling doctor says why)")
    holder = template.holder.pid
    stray, pipes = await fork_unasked(template)
    await asyncio.wait_for(template.guest.wait(), 10)
    assert not template.alive
    for fd in pipes:  # the guest reads the end of its input, and exits
        os.close(fd)
    await template.close()
    started = time.monotonic()
    await template.release()
    assert time.monotonic() - started < 1  # not the deadline: nothing was left waiting
    for pid in (stray, holder):
        assert not_our_child(pid), f"process {pid} was left to reap"


async def test_the_hunt_spares_a_process_until_its_grace_is_over(template: Template) -> None:
    """A process in the namespace that the host does not know yet (as a guest whose Fork
    reply is still on its way) is left alone while it is within the grace; past the grace
    it is killed, then reaped."""
    if template.holder is None:
        pytest.skip("the kernel gave the template no PID namespace (kindling doctor says why)")
    holder = template.holder
    pid, pipes = await fork_unasked(template)
    try:
        hunt = StrayHunt(grace=60.0)
        assert hunt.sweep([holder], lambda _pid: False) == []
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # spared
        hunt.grace = 0.0
        ended: list[int] = []
        for _ in range(100):
            ended += hunt.sweep([holder], lambda _pid: False)
            if ended:
                break
            await asyncio.sleep(0.05)
        assert ended == [pid] and not_our_child(pid)
    finally:
        for fd in pipes:
            os.close(fd)


async def fork_unasked(template: Template) -> tuple[int, tuple[int, int]]:
    """Have ``template`` fork a guest for a Fork the host's bookkeeping never sent: its pid,
    and the host's ends of its pipes (the test closes them)."""
    children_before = {child.pid for child in psutil.Process().children()}
    guest_read, host_write = os.pipe()
    host_read, guest_write = os.pipe()
    try:
        await template._send(msgpack.packb(Fork(id=999).wire()), [guest_read, guest_write])
    finally:
        os.close(guest_read)
        os.close(guest_write)
    stray: set[int] = set()
    for _ in range(200):
        stray = {child.pid for child in psutil.Process().children()} - children_before
        if stray:
            break
        await asyncio.sleep(0.05)
    assert len(stray) == 1, "the template forked no guest"
    return stray.pop(), (host_read, host_write)


async def test_a_process_a_template_forks_unasked_is_ended_while_the_host_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A template forks a guest for a Fork the host never sent (as one taken over after
    its start could), and the host serves on. The fleet's stray hunt kills that process
    and reaps it once it has stayed unknown past the grace, while the host is open, and
    leaves alone the guest the host does know."""
    monkeypatch.setattr(fleet, "STRAY_GRACE_SECONDS", 0.5)
    monkeypatch.setattr(fleet, "STRAY_SWEEP_SECONDS", 0.1)
    async with Host(cache=False) as host:
        sandbox = await host.launch(EXPORTS)
        (template,) = host.templates()
        if template.holder is None:
            pytest.skip("the kernel gave the template no PID namespace (kindling doctor says why)")
        pid, pipes = await fork_unasked(template)
        try:
            for _ in range(100):  # alive, and waiting for its host: only the hunt ends it
                if not_our_child(pid):
                    break
                await asyncio.sleep(0.05)
            assert not_our_child(pid), "the stray lived on"
            assert await sandbox.invoke("add", 2, 3) == [5]
        finally:
            for fd in pipes:
                os.close(fd)


FORK_A_STRAY = """
import ctypes, time
pid = ctypes.CDLL(None, use_errno=True).syscall(56, {flags}, 0, 0, 0, 0)
if pid == 0:
    while True:
        time.sleep(3600)
result = f"forked {{pid}}, errno {{ctypes.get_errno()}}"
"""
CLONE_PARENT = 0x00008000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000


async def test_a_process_a_template_forks_while_loading_ends_with_its_failed_start() -> None:
    """The module's bytes take over the template's decoder, which forks a process that
    sleeps for good (a child of the host, which the host never hears of), then fails the
    Load. When the launch fails, the stray is dead and reaped: it ended with the holder
    the template made before it read the module, which the host ended with the failed
    start."""
    stray, gone = await fork_while_loading(CLONE_PARENT | signal.SIGCHLD)
    assert stray > 0, f"the attack failed to fork: errno {-stray}"
    assert gone, "the stray outlived the failed start"


async def test_a_template_cannot_fork_into_a_pid_namespace_of_its_own() -> None:
    """The same attack, with a PID namespace of the stray's own (and a user namespace to be
    allowed one), which the host would not see as the holder's: the kernel refuses it, as
    the template's root is empty (``host.holder`` relies on that)."""
    refused, _ = await fork_while_loading(
        CLONE_PARENT | CLONE_NEWUSER | CLONE_NEWPID | signal.SIGCHLD
    )
    assert refused == -errno.EPERM


async def fork_while_loading(flags: int) -> tuple[int, bool]:
    """Launch a module that takes over the template's decoder and clones with ``flags``:
    the pid that clone gave (or minus its errno), and whether that process was gone, and
    reaped, once the launch had failed (the host still open)."""
    async with Host(cache=False, launcher=subverted()) as host:
        with pytest.raises(GuestEnded) as failed:
            await host.launch(("python:" + FORK_A_STRAY.format(flags=flags)).encode())
        report = re.search(r"forked (-?\d+), errno (\d+)", failed.value.ending.message)
        assert report is not None, failed.value.ending.message
        pid = int(report[1])
        if pid <= 0:
            return -int(report[2]), True
        return pid, not_our_child(pid) and not psutil.pid_exists(pid)


def not_our_child(pid: int) -> bool:
    """Process ``pid`` is no child of ours, not even one waiting to be reaped."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False

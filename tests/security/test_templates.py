"""A template the host cannot trust: one that forks a guest the host never asked for.

A template decodes and compiles untrusted modules, and may fork (``clone`` is in its
filter), so an engine bug there lets an attacker fork at will. Its guests are the host's
children (``CLONE_PARENT``) and, where the kernel allows, in a PID namespace whose init (the
template's holder) finishes dying only once every process in it has been reaped. A guest
the host does not know of is reaped by nobody: it must not hold the host when the host
releases the template (``NamespaceHolder.end`` waits on the holder's pidfd, with a
deadline).
"""

from __future__ import annotations

import asyncio
import os
import time

import msgpack
import psutil
import pytest

from host.template import HOLDER_EXIT_SECONDS, Template
from protocol.messages import Fork
from tests.host.conftest import no_leaks, template  # the host tests' fixtures: leaks checked

pytestmark = pytest.mark.slow  # a template, and guests forked from it
__all__ = ["no_leaks", "template"]  # fixtures, used by name


async def test_a_guest_the_host_was_never_told_of_cannot_hold_it_at_release(
    template: Template,
) -> None:
    """The template forks a guest for a Fork the host's bookkeeping never sent. The host
    ends the template for answering a request that is not pending; the guest, once it
    exits, is a zombie child of the host that no one reaps, and keeps the namespace's init
    from finishing its exit. ``release`` still returns within its deadline, and the holder
    is reaped once the stray is."""
    guest = await template.fork()  # by now the template has said where its namespace is
    await guest.handshake()
    await guest.stop()
    holder = template.holder.pid if template.holder is not None else None
    children_before = {child.pid for child in psutil.Process().children()}
    guest_read, host_write = os.pipe()
    host_read, guest_write = os.pipe()
    try:
        await template._send(msgpack.packb(Fork(id=999).wire()), [guest_read, guest_write])
    finally:
        os.close(guest_read)
        os.close(guest_write)
    await asyncio.wait_for(template.guest.wait(), 10)
    assert not template.alive
    stray: set[int] = set()
    for _ in range(200):
        stray = {child.pid for child in psutil.Process().children()} - children_before
        if stray:
            break
        await asyncio.sleep(0.05)
    assert len(stray) == 1, "the template forked no guest"
    os.close(host_write)  # the guest reads the end of its input, and exits
    os.close(host_read)
    await template.close()
    started = time.monotonic()
    await template.release()
    assert time.monotonic() - started < HOLDER_EXIT_SECONDS + 3
    os.waitpid(stray.pop(), 0)  # what the host left: reaping the stray
    if holder is None:
        return  # no PID namespace here: nothing else waited on the stray
    # ... lets the holder finish exiting, and its pidfd has the host reap it.
    for _ in range(200):
        try:
            os.waitid(os.P_PID, holder, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the holder was not reaped once it could exit")

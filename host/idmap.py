"""Mapping a guest's subordinate uid and gid into its user namespace (an ordinary user's host).

::

    guest: unshare(CLONE_NEWUSER) at start-up ──▶ Hello ──▶ waits for the host's Hello
    host:  the guest's Hello ──▶ newuidmap PID 0 <host uid> 1 1 <uid> 1
                             ──▶ newgidmap PID 0 <host gid> 1 1 <gid> 1 ──▶ its own Hello
    guest: at Load, setresgid/setresuid(1): outside its namespace it is <uid>, <gid>

Only root may write another uid into a user namespace's map, so the setuid helpers of the
``uidmap`` package do it, checking ``/etc/subuid`` and ``/etc/subgid``: a user may map the
ranges granted to it there, and its own ids. Inside, 0 is the host's uid (the guest is root
of its namespace until it drops to 1, so it can still make its other namespaces) and 1 is
the subordinate one. The host holds its Hello back until both maps are written (the guest
is waiting for it), so the guest never runs a step of its hardening unmapped.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
from pathlib import Path

from protocol.messages import SUBORDINATE_INSIDE_ID


class IdMapError(Exception):
    """The helpers could not map the ids; the text says why."""


async def map_subordinate_ids(pid: int, uid: int, gid: int) -> None:
    """Write ``pid``'s uid and gid maps: 0 to the host's ids, 1 to ``uid`` and ``gid``."""
    for name, own, theirs in (("newuidmap", os.getuid(), uid), ("newgidmap", os.getgid(), gid)):
        helper = _helper(name)
        mapping = ("0", str(own), "1", str(SUBORDINATE_INSIDE_ID), str(theirs), "1")
        process = await asyncio.create_subprocess_exec(
            helper,
            str(pid),
            *mapping,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, error = await process.communicate()
        if process.returncode != 0:
            said = error.decode(errors="replace").strip() or f"exit status {process.returncode}"
            raise IdMapError(f"{Path(helper).name} {pid} {' '.join(mapping)}: {said}")


@functools.cache
def _helper(name: str) -> str:
    """The path of ``newuidmap`` or ``newgidmap``, looked up once per host, not per guest."""
    helper = shutil.which(name)
    if helper is None:
        raise IdMapError(f"{name} is not installed (Debian: the uidmap package)")
    return helper

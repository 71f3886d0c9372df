"""Which uid and gid a host's guests take: each template its own, from a range.

::

    a root host: Host(guest_uids=range(...))  ──▶ GuestUids.template_env() per template
        ──▶ KINDLING_GUEST_UID in the template's environment: the template, the throwaway
        guest of its start function and every guest it forks drop root to that uid
        (guestproc.hardening)
    an ordinary user's host, with subordinate ids (/etc/subuid, /etc/subgid, and the
    newuidmap and newgidmap helpers installed)  ──▶ KINDLING_SUBORDINATE_IDS=UID:GID
        the guest enters a user namespace at start-up; the host maps UID and GID into it
        before its Hello (host.idmap); the guest takes them at Load
    an exec guest (kindling run, a bench)  ──▶ Launcher.default(): one picked at random

Guests of different templates then differ in uid as well as being filtered: neither can
signal, trace or read the /proc files of the other's processes, whatever a filter misses.
Never root's uid, never ``nobody`` (which other software on the machine may use), never the
host's. A host running as an ordinary user without subordinate ids cannot change uid: its
guests share its uid and rely on namespaces and filters (``kindling doctor`` says which).
"""

from __future__ import annotations

import functools
import os
import pwd
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from protocol.messages import GUEST_UID_VARIABLE, SUBORDINATE_IDS_VARIABLE

DEFAULT_GUEST_UIDS = range(0x7F00_0000, 0x7F00_0000 + 65536)
"""Far above the uids and subordinate ranges (``/etc/subuid`` starts at 100000) that
distributions hand out; no file on the machine belongs to them."""


def check_range(uids: range) -> range:
    """``uids`` if a guest may take every uid in it; ``ValueError`` naming why not."""
    if len(uids) == 0 or uids.step != 1:
        raise ValueError(f"the guest uids must be a non-empty range of step 1, not {uids}")
    if uids.start <= 0 or uids.stop > 0xFFFFFFFF or 65534 in uids or os.getuid() in uids:
        raise ValueError(
            f"the guest uids {uids.start}-{uids.stop - 1} must leave out root (0), nobody "
            f"(65534), the host's uid and -1"
        )
    return uids


SUBUID_FILE = Path("/etc/subuid")
SUBGID_FILE = Path("/etc/subgid")


@dataclass(frozen=True)
class SubordinateIds:
    """An ordinary user's first subordinate uid and gid ranges, and the setuid helpers that
    map ids of them into a guest's user namespace."""

    uids: range
    gids: range
    newuidmap: str
    newgidmap: str

    def pair(self, index: int) -> tuple[int, int]:
        """The ``index``-th uid and gid, wrapping around the shorter range."""
        return self.uids[index % len(self.uids)], self.gids[index % len(self.gids)]

    def describe(self) -> str:
        return (
            f"uids {self.uids.start}-{self.uids.stop - 1} and gids "
            f"{self.gids.start}-{self.gids.stop - 1} ({SUBUID_FILE}, {SUBGID_FILE})"
        )


def subordinate_range(path: Path, names: tuple[str, ...]) -> range | None:
    """The first range of ``path`` (``/etc/subuid`` format: ``NAME_OR_ID:START:COUNT``) given
    to one of ``names`` and usable by guests (no root, nobody or host id in it); None."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        owner, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        if owner not in names or not start.isdigit() or not count.isdigit():
            continue
        ids = range(int(start), int(start) + int(count))
        if len(ids) and not any(own in ids for own in (0, 65534, os.getuid(), os.getgid())):
            return ids
    return None


@functools.cache
def find_subordinate_ids() -> SubordinateIds | str:
    """This user's subordinate ids and the helpers to map them, or why there are none."""
    if os.geteuid() == 0:
        return "running as root (guests drop root to a uid of their own instead)"
    try:
        names: tuple[str, ...] = (pwd.getpwuid(os.getuid()).pw_name, str(os.getuid()))
    except KeyError:
        names = (str(os.getuid()),)
    uids = subordinate_range(SUBUID_FILE, names)
    gids = subordinate_range(SUBGID_FILE, names)
    if uids is None or gids is None:
        return f"no subordinate uids and gids for {names[0]} in {SUBUID_FILE} and {SUBGID_FILE}"
    newuidmap, newgidmap = shutil.which("newuidmap"), shutil.which("newgidmap")
    if newuidmap is None or newgidmap is None:
        return "newuidmap and newgidmap are not installed (Debian: the uidmap package)"
    return SubordinateIds(uids, gids, newuidmap, newgidmap)


class GuestUids:
    """Hands out the uids of ``uids`` (a root host) or the subordinate ids (an ordinary
    user's, ``subordinate``: if it has them) in turn, from a random place (so that two
    hosts on one machine seldom start at the same one); each template takes one for good."""

    def __init__(self, uids: range = DEFAULT_GUEST_UIDS, subordinate: bool = True) -> None:
        self.uids = check_range(uids)
        found = find_subordinate_ids() if subordinate else None
        self.subordinate = found if isinstance(found, SubordinateIds) else None
        self._next = random.randrange(len(uids))

    def take(self) -> int:
        uid = self.uids[self._next]
        self._next = (self._next + 1) % len(self.uids)
        return uid

    def template_env(self) -> dict[str, str]:
        """The environment variables that name the next template's ids ({} for none)."""
        if os.geteuid() == 0:
            return {GUEST_UID_VARIABLE: str(self.take())}
        if self.subordinate is not None:
            uid, gid = self.subordinate.pair(self._next)
            self._next += 1
            return {SUBORDINATE_IDS_VARIABLE: f"{uid}:{gid}"}
        return {}


def exec_guest_env() -> dict[str, str]:
    """The variables naming the ids of a guest started on its own (not from a template):
    picked at random."""
    if os.geteuid() == 0:
        return {GUEST_UID_VARIABLE: str(random.choice(DEFAULT_GUEST_UIDS))}
    found = find_subordinate_ids()
    if isinstance(found, SubordinateIds):
        uid, gid = found.pair(random.randrange(len(found.uids)))
        return {SUBORDINATE_IDS_VARIABLE: f"{uid}:{gid}"}
    return {}

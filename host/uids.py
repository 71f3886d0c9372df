"""Which uid a root host's guests take: each template its own, from a configurable range.

::

    Host(guest_uids=range(...))  ──▶ GuestUids.take() per template ──▶ KINDLING_GUEST_UID
        in the template's environment: the template, the throwaway guest of its start
        function and every guest it forks drop root to that uid (guestproc.hardening)
    an exec guest (kindling run, a bench)  ──▶ Launcher.default(): one picked at random

Guests of different templates then differ in uid as well as being filtered: neither can
signal, trace or read the /proc files of the other's processes, whatever a filter misses.
Never root's uid, never ``nobody`` (which other software on the machine may use), never the
host's. A host running as an ordinary user cannot change uid: its guests share its uid and
rely on namespaces and filters (``kindling doctor`` says so).
"""

from __future__ import annotations

import os
import random

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


class GuestUids:
    """Hands out the uids of ``uids`` in turn, from a random place (so that two hosts on
    one machine seldom start at the same one); each template takes one for good."""

    def __init__(self, uids: range = DEFAULT_GUEST_UIDS) -> None:
        self.uids = check_range(uids)
        self._next = random.randrange(len(uids))

    def take(self) -> int:
        uid = self.uids[self._next]
        self._next = (self._next + 1) % len(self.uids)
        return uid


def random_guest_uid() -> int:
    """A uid for a guest started on its own (not from a template)."""
    return random.choice(DEFAULT_GUEST_UIDS)

"""The life of a guest process, from exec to exit.

::

    host ── exec python -S -m guestproc R W ──▶ guest process
                                                  1. sandbox.enter: stdio -> /dev/null, close
                                                     every other inherited fd, empty env, own
                                                     process group
                                                  2. import the engine and WASI
                                                  3. sandbox.restrict: no files, no core, few fds
                                                     (the rest at Load and Boot: confinement)
                                                  4. Hello ──▶ host       (handshake, our half)
                                                  5. host's Hello ◀──     (version must match)
                                                  6. serve requests (session.Session) until
                                                     Shutdown, or the program/instance is over
                                                     (``serve``; a template serves until it
                                                     is booted, then forks: ``Served.paused``)
                                                  7. exit: status 0, or one of the statuses below

The engine is imported before the file-size limit, so CPython can cache its bytecode. The
host may have sent its requests long before: they wait in the pipe.

Exit statuses are ``protocol.messages.GuestExitStatus`` (the host reads them only when no
final frame explains the ending): ``OK`` when the protocol finished normally,
``OUT_OF_MEMORY`` when memory ran out (RLIMIT_DATA) where no frame could say so,
``HOST_BROKE_PROTOCOL`` when the host sent something the protocol does not allow.

When the host goes away (its pipe closes) the guest exits at once with status 0.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from protocol.messages import PROTOCOL_VERSION, GuestExitStatus, GuestHello, HostHello

from . import sandbox
from .channel import Channel, HostGone, HostProtocolError

if TYPE_CHECKING:
    from .session import Session


class Served:
    """How serving stopped. ``paused``: ``until`` became true after a request, and the
    caller goes on with the process (the protocol is not over; ``status`` is ``OK``).
    Otherwise the protocol ended, and ``status`` is the exit status the process ends with."""

    # A plain class: a dataclass would cost every guest about 0.8 ms more start-up.
    __slots__ = ("paused", "status")

    def __init__(self, status: GuestExitStatus, paused: bool = False) -> None:
        self.status = status
        self.paused = paused


# Made once: the object a forked guest's last request returns, not one it builds (its
# class, ``__init__`` and enum are pages it would copy just to exit).
_FINISHED = Served(GuestExitStatus.OK)


def run(read_fd: int, write_fd: int) -> int:
    """Be a guest on these pipes; return the process exit status (see the module docstring)."""
    sandbox.enter((read_fd, write_fd))
    channel = Channel(read_fd, write_fd)
    try:
        from .session import Session  # the engine: the bulk of start-up

        sandbox.restrict()
    except MemoryError:
        return GuestExitStatus.OUT_OF_MEMORY
    return serve(channel, Session(channel)).status


def serve(channel: Channel, session: Session, until: Callable[[], bool] | None = None) -> Served:
    """Say Hello, check the host's, then serve requests until the protocol ends, or, with
    ``until``, until it is true after a request (then ``paused``)."""
    try:
        channel.send(GuestHello(id=0, ready_ns=time.monotonic_ns()))
        greeting = channel.expect(HostHello)
        if greeting.version != PROTOCOL_VERSION:
            raise HostProtocolError(
                f"the host speaks version {greeting.version}, we speak {PROTOCOL_VERSION}"
            )
        return serve_requests(channel, session, until)
    except HostGone:
        return Served(GuestExitStatus.OK)
    except HostProtocolError:
        return Served(GuestExitStatus.HOST_BROKE_PROTOCOL)


def serve_requests(
    channel: Channel, session: Session, until: Callable[[], bool] | None = None
) -> Served:
    """Serve requests after the handshake; see ``serve``."""
    try:
        while session.handle(channel.receive()):
            if until is not None and until():
                return Served(GuestExitStatus.OK, paused=True)
            if session.booted is None:  # a call less per request for a forked guest
                session.idle()
        return _FINISHED
    except MemoryError:
        if session.out_of_memory_frame:
            with contextlib.suppress(BaseException):  # the exit status says it too
                channel.send_encoded(session.out_of_memory_frame)
        return Served(GuestExitStatus.OUT_OF_MEMORY)
    except HostGone:
        return Served(GuestExitStatus.OK)
    except HostProtocolError:
        return Served(GuestExitStatus.HOST_BROKE_PROTOCOL)


def exit_now(status: int) -> None:
    """End the process without interpreter teardown: everything was sent synchronously."""
    os._exit(status)

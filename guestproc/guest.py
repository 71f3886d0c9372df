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

GUEST_STATUS_ENDED_EARLY = -1
"""``serve`` with ``until``: the protocol ended before ``until`` was true (not an exit status:
the caller exits with ``GuestExitStatus.OK``, having told the host how it ended)."""


def run(read_fd: int, write_fd: int) -> int:
    """Be a guest on these pipes; return the process exit status (see the module docstring)."""
    sandbox.enter((read_fd, write_fd))
    channel = Channel(read_fd, write_fd)
    try:
        from .session import Session  # the engine: the bulk of start-up

        sandbox.restrict()
    except MemoryError:
        return GuestExitStatus.OUT_OF_MEMORY
    return serve(channel, Session(channel))


def serve(channel: Channel, session: Session, until: Callable[[], bool] | None = None) -> int:
    """Say Hello, check the host's, then serve requests until the protocol ends (or, with
    ``until``, until it is true after a request: then ``GuestExitStatus.OK`` means "go on");
    the process exit status."""
    try:
        channel.send(GuestHello(id=0, ready_ns=time.monotonic_ns()))
        greeting = channel.expect(HostHello)
        if greeting.version != PROTOCOL_VERSION:
            raise HostProtocolError(
                f"the host speaks version {greeting.version}, we speak {PROTOCOL_VERSION}"
            )
        return serve_requests(channel, session, until)
    except HostGone:
        return GuestExitStatus.OK
    except HostProtocolError:
        return GuestExitStatus.HOST_BROKE_PROTOCOL


def serve_requests(
    channel: Channel, session: Session, until: Callable[[], bool] | None = None
) -> int:
    """Serve requests after the handshake; see ``serve``."""
    try:
        while session.handle(channel.receive()):
            if until is not None and until():
                return GuestExitStatus.OK
            session.idle()
        return GuestExitStatus.OK if until is None else GUEST_STATUS_ENDED_EARLY
    except MemoryError:
        if session.out_of_memory_frame:
            with contextlib.suppress(BaseException):  # the exit status says it too
                channel.send_encoded(session.out_of_memory_frame)
        return GuestExitStatus.OUT_OF_MEMORY
    except HostGone:
        return GuestExitStatus.OK
    except HostProtocolError:
        return GuestExitStatus.HOST_BROKE_PROTOCOL


def exit_now(status: int) -> None:
    """End the process without interpreter teardown: everything was sent synchronously."""
    os._exit(status)

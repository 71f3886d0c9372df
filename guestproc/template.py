"""A template process: a guest that loads and boots a module once, then forks ready guests.

::

    host ── exec python -S -P -m guestproc --template 3 4 5 ──▶ template
      frames on 3 / 4, as with any guest:  Hello, Load, Boot ──▶ Ready
      (then every function compiled, gc.freeze(): the shared part is final)
      control socket on 5 (SOCK_SEQPACKET):
                                   ◀── Namespace(pid): at Load, before the module is decoded
        Fork(id) + two pipe ends (SCM_RIGHTS) ──▶ clone_parent()
                                   ◀── Forked(id, pid) | ForkFailed(id, error)
                                                   └─▶ the guest: a child of the *host*
      a Shutdown frame, or the host closing either channel ──▶ the template exits

A forked guest inherits the instance -- decoded, validated, compiled, instantiated -- copy on
write, and only has to make the host's pipes its descriptors 3 and 4, tighten its limits and
say Hello: it is then ready for Invoke at once (no Load or Boot).

Guests are cloned with ``CLONE_PARENT`` (``cloning``), so their parent is the host, not the
template: the host reaps them itself with ``wait4`` (exit status and resource use exact, no
relay), a template that dies takes no guest with it, and each guest's ``PR_SET_PDEATHSIG``
names the host, so every guest dies with the host. They are forked into the PID namespace
whose holder the template made at Load, before it read the module (``cloning``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import socket
import struct
import time
from typing import TYPE_CHECKING, NoReturn

import msgpack  # type: ignore[import-untyped]

from protocol.frames import encode_frame
from protocol.messages import (
    CONTROL_FRAME_CAP,
    GUEST_FRAME_CAP,
    GUEST_TO_HOST,
    HOST_TO_GUEST,
    Fork,
    Forked,
    ForkFailed,
    GuestExitStatus,
    GuestHello,
    Invoke,
    MessageType,
    Shutdown,
    clip,
)
from protocol.schema import Range, fields_of, prepare, tag_reader

from . import cloning, confinement, sandbox
from .channel import Channel, HostGone, HostProtocolError
from .cloning import clone_parent
from .guest import serve, serve_requests
from .quickening import quicken
from .rehearsal import Rehearsal

if TYPE_CHECKING:
    from .booting import BootedInstance
    from .session import Session

CONTROL_FD = 5


def run(read_fd: int, write_fd: int, control_fd: int) -> int:
    """Be a template on these descriptors; the process exit status."""
    sandbox.enter((read_fd, write_fd, control_fd))
    host = os.getppid()
    channel = Channel(read_fd, write_fd)
    cloning.expect_holder(read_fd, control_fd)  # made at Load (``cloning``)
    from .session import Session

    sandbox.restrict()
    rehearsal = Rehearsal()  # its pipes, while the template may still make them
    session = Session(channel, template=True)
    # A Boot that fails (LoadFailed: a link error, a snapshot that does not fit) ends the
    # template as it would end a guest: the host has its reply. It runs no module code: a
    # start function ran in a throwaway guest, and Boot brings what it left (``snapshots``).
    served = serve(channel, session, until=lambda: session.booted is not None)
    booted = session.booted
    if not served.paused or booted is None:  # the protocol ended before Boot succeeded
        rehearsal.close()
        return served.status
    confinement.before_forking(booted.memory_budget, booted.code_size)
    # What its guests will send and receive, checked and encoded from shared structures,
    # and the code that serves a request, warmed (``rehearsal``).
    prepare([*HOST_TO_GUEST.values(), *GUEST_TO_HOST.values(), Fork, Forked, ForkFailed])
    # Invoke, then Shutdown: what every forked guest reads, found by the fewest comparisons.
    channel.read_tagged = tag_reader(
        {str(Invoke.TYPE): Invoke, str(Shutdown.TYPE): Shutdown, **HOST_TO_GUEST}
    )
    rehearsal.run(session, booted)
    quicken(booted.instance.compiled_functions())  # the module's, without running them
    gc.collect()
    # Compiling left megabytes of freed heap mapped (6 MiB for a small C program): every
    # fork copies the page table entries of what is mapped, and every guest's exit takes
    # them down again, so they are given back first. (Each guest pays a few zero-filled
    # pages for it where it would have copied them: measured +9 faults of about 560.)
    sandbox.release_freed()
    gc.freeze()
    control = socket.socket(fileno=control_fd)
    # In the holder's namespace a guest's parent is outside: getppid() says 0 there.
    return _fork_on_request(session, booted, control, None if cloning.own_namespace else host)


def _fork_on_request(
    session: Session, booted: BootedInstance, control: socket.socket, host: int | None
) -> int:
    """Fork a guest for each Fork on ``control``, until the host shuts the template down.
    ``host``: the pid a guest's parent must have, or None where it cannot tell."""
    channel = session.channel
    waiting = select.poll()
    waiting.register(channel.read_fd, select.POLLIN)
    waiting.register(control.fileno(), select.POLLIN)
    control_fd = control.fileno()
    while True:
        for ready, _ in waiting.poll():
            if ready == channel.read_fd:
                try:
                    message = channel.receive()
                except HostGone:
                    return GuestExitStatus.OK
                except HostProtocolError:
                    return GuestExitStatus.HOST_BROKE_PROTOCOL
                if isinstance(message, Shutdown):
                    return GuestExitStatus.OK
                return GuestExitStatus.HOST_BROKE_PROTOCOL  # a template serves no requests
            if ready != control_fd:
                continue
            data, fds = _receive_fork(control)
            if not data:
                return GuestExitStatus.OK  # the host closed the control socket
            try:
                request_id = fork_request_id(data)
                if len(fds) != 2:
                    raise ValueError("a Fork carries two descriptors")
            except Exception:
                for fd in fds:
                    os.close(fd)
                return GuestExitStatus.HOST_BROKE_PROTOCOL
            # Inline, and the parent's path names neither the session nor the instance:
            # each object the template touches after a fork is a page it copies.
            try:
                pid = clone_parent()
            except OSError as exc:
                reply = ForkFailed(id=request_id, error=clip(str(exc))).wire()
            else:
                if pid == 0:
                    _become_guest(session, booted, control, host, fds)
                _FORKED["id"] = request_id
                _FORKED["pid"] = pid
                reply = _FORKED
            for fd in fds:
                os.close(fd)
            control.send(msgpack.packb(reply))


_FD_SIZE = struct.calcsize("i")
_ANCILLARY_SPACE = socket.CMSG_SPACE(2 * _FD_SIZE)


def _receive_fork(control: socket.socket) -> tuple[bytes, list[int]]:
    """A control frame and the descriptors that came with it (``socket.recv_fds`` without
    its array)."""
    data, ancillary, _, _ = control.recvmsg(CONTROL_FRAME_CAP, _ANCILLARY_SPACE)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            whole = len(payload) - len(payload) % _FD_SIZE
            fds.extend(struct.unpack(f"{whole // _FD_SIZE}i", payload[:whole]))
    return data, fds


# The maps of the frames sent at every fork, made once, before the template forks: only the
# numbers change (every object the template or a new guest builds or touches after a fork
# is in a page that one of them copies).
_FORKED = Forked(id=0, pid=2).wire()
_HELLO = GuestHello(id=0, ready_ns=0).wire()

_FORK_FIELDS = {spec.name: spec for spec in fields_of(Fork)}
_FORK_TYPE = MessageType.FORK.value
_FORK_KEYS = frozenset({"type", *_FORK_FIELDS})
_FORK_ID = next(c for c in _FORK_FIELDS["id"].constraints if isinstance(c, Range))


def fork_request_id(data: bytes) -> int:
    """The id of the ``Fork`` request in ``data``, checked as ``read_message`` checks it
    against the declaration (``ValueError`` otherwise), with a handful of dict operations.

    Every object the template touches after a fork makes the page it sits on a page of
    the guest's own (the template writes a copy; the guest keeps the original), so this
    loop stays small: the general checker here cost each guest about 65 KiB of USS
    (measured with /proc/PID/smaps on guests of exports.wasm)."""
    request = msgpack.unpackb(data)
    if type(request) is not dict or request.keys() != _FORK_KEYS:
        raise ValueError("not a Fork")
    request_id = request["id"]
    if request["type"] != _FORK_TYPE or type(request_id) is not int:
        raise ValueError("not a Fork")
    if not _FORK_ID.low <= request_id <= _FORK_ID.high:
        raise ValueError("a Fork's id out of range")
    return int(request_id)


def _become_guest(
    session: Session,
    booted: BootedInstance,
    control: socket.socket,
    host: int | None,
    fds: list[int],
) -> NoReturn:
    """The forked child: take the host's pipes as 3 and 4, tighten limits, serve."""
    status: int = GuestExitStatus.HOST_BROKE_PROTOCOL
    try:
        sandbox.set_parent_death_signal()  # no_new_privs is inherited
        # The host died before we could tie ourselves to it. (In the holder's namespace
        # our parent is outside, and getppid() is 0: the host's pipe tells then, at the
        # first read, since only the host holds its end.)
        if host is not None and os.getppid() != host:
            os._exit(GuestExitStatus.OK)
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        control.detach()
        os.close(CONTROL_FD)
        sandbox.forget_status()
        channel = session.channel
        read_fd, write_fd = fds
        os.dup2(read_fd, channel.read_fd)
        os.dup2(write_fd, channel.write_fd)
        os.close(read_fd)
        os.close(write_fd)
        confinement.forked(booted.cpu_seconds)
        # The template and the host checked each other's versions: say Hello and serve.
        try:
            _HELLO["ready_ns"] = time.monotonic_ns()
            channel.send_encoded(encode_frame(_HELLO, GUEST_FRAME_CAP))
        except HostGone:
            status = GuestExitStatus.OK
        else:
            status = serve_requests(channel, session).status
    finally:
        os._exit(status)

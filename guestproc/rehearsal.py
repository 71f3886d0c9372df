"""A template's rehearsal: before its first fork, it serves itself requests that run no
module code, so that the code every request of its guests runs is warm in the shared pages.

::

    template, ready to fork ──▶ Invoke(an export it lacks)        ──▶ Refused(no_export)
      (the channel's descriptors  Invoke(an export, an argument     ──▶ Refused(arguments)
       point at its own pipes)           that does not fit)
                                  Shutdown                       ──▶ (handle says: stop)
      ... WARM_UP_ROUNDS times each, then the channel points at the host again

CPython 3.11 counts the first calls of every function in its code object, then rewrites the
code, specialised, on the eighth. A guest that makes those writes itself copies each page
they land on: measured on ``kindling bench spawn``'s module, a forked guest's first
``Invoke`` wrote to the code objects of about twenty functions (read the frame, check it,
dispatch, start the reply, flush the console, check the arguments, write the reply). After a
rehearsal they are done once, in the template, and shared.

A rehearsal never calls into the module: both requests are refused before the engine is
entered. The pipes are made when the template starts, before seccomp forbids making any.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from protocol.frames import encode_frame
from protocol.messages import Invoke, Shutdown
from protocol.schema import WARM_UP_ROUNDS

from .engine import Function, ValType
from .values import encode_result

if TYPE_CHECKING:
    from .booting import BootedInstance
    from .session import Session

_INTEGERS = (ValType.I32, ValType.I64)


class Rehearsal:
    """Two pipes of the template's own: requests in, replies out."""

    def __init__(self) -> None:
        self._requests = os.pipe()
        self._replies = os.pipe()
        os.set_blocking(self._replies[0], False)

    def close(self) -> None:
        for fd in (*self._requests, *self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self, session: Session, booted: BootedInstance) -> None:
        """Serve the rehearsed requests through ``session`` (whose channel is pointed at the
        pipes meanwhile), then close the pipes. Each request takes the id of the request
        served last, so the session's reply state is as it was."""
        channel = session.channel
        host = channel.read_fd, channel.write_fd
        channel.read_fd, channel.write_fd = self._requests[0], self._replies[1]
        try:
            requests = _requests(booted, session.replies.request_id)
            for _ in range(WARM_UP_ROUNDS):
                for request in requests:
                    os.write(self._requests[1], request)
                    if not session.handle(channel.receive()):
                        raise RuntimeError("a rehearsed request ended the session")
                    self._drain()
            # The request that ends every guest, read and handled: it only says to stop.
            shutdown = encode_frame(Shutdown(id=session.replies.request_id).wire())
            for _ in range(WARM_UP_ROUNDS):
                os.write(self._requests[1], shutdown)
                if session.handle(channel.receive()):
                    raise RuntimeError("a rehearsed Shutdown did not end the session")
            # A command's reads of the stdin its request brought (no frames: no module code).
            replies = session.replies
            for _ in range(WARM_UP_ROUNDS):
                replies.given_stdin(b"-")
                while replies.read_stdin(1):
                    pass
            replies.start(replies.request_id)  # reads ask the host again
            for valtype in ValType:
                if valtype.is_num:
                    for _ in range(WARM_UP_ROUNDS):
                        encode_result(valtype, 0)
        finally:
            channel.read_fd, channel.write_fd = host
            self.close()

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._replies[0], 1 << 16):
                pass


def _requests(booted: BootedInstance, request_id: int) -> list[bytes]:
    """The frames to rehearse: an export the module lacks; and, if it exports a function
    with an integer parameter, that function with a fraction for the last such parameter
    (the ones before it are converted, then the fraction is refused)."""
    exports = booted.instance.exports
    missing = "-"
    while missing in exports:
        missing += "-"
    frames = [encode_frame(Invoke(id=request_id, export=missing, args=[]).wire())]
    for name, item in sorted(exports.items()):
        if not isinstance(item, Function):
            continue
        params = item.type.params
        integers = [index for index, valtype in enumerate(params) if valtype in _INTEGERS]
        if integers:
            args: list[int | float] = [0] * len(params)
            args[integers[-1]] = 0.5
            frames.append(encode_frame(Invoke(id=request_id, export=name, args=args).wire()))
            break
    return frames

"""``python -S -P tests/guests/misbehave.py MODE READ_FD WRITE_FD``: a guest that breaks the
protocol.

For the host's tests only, and in no shipped package: ``tests.guests.misbehaving(mode)`` is
the launcher that runs this file by path. It imports only ``protocol`` and ``guestproc``,
which the real guest's ``PYTHONPATH`` provides. Each mode plays the guest correctly up to a
point and then does one thing wrong, so tests can check that the host contains it and names
the ending. See ``MODES`` for the list.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from protocol import messages as m
from protocol.frames import HEADER, encode_frame, read_frame, write_all
from protocol.messages import CODE_CHUNK, HOST_FRAME_CAP, MAX_SNAPSHOT_BYTES, PROTOCOL_VERSION

LOAD_TIMINGS = {"decode_ms": 0.0, "validate_ms": 0.0, "compile_ms": 0.0}
BOOT_TIMINGS = {"instantiate_ms": 0.0, "precompile_ms": 0.0, "precompiled": 0}

# The messages as maps, which the modes below bend out of shape.


def hello(ready_ns: int) -> dict[str, Any]:
    return m.GuestHello(id=0, ready_ns=ready_ns).wire()


def loaded(request_id: int, timings: dict[str, float]) -> dict[str, Any]:
    return m.Loaded(id=request_id, timings=m.LoadTimings(**timings)).wire()


def ready(request_id: int, timings: dict[str, Any]) -> dict[str, Any]:
    return m.Ready(id=request_id, timings=m.BootTimings(**timings)).wire()


def starting(request_id: int) -> dict[str, Any]:
    return m.Starting(id=request_id).wire()


def code(request_id: int, data: bytes) -> dict[str, Any]:
    return m.Code(id=request_id, data=data).wire()


def snapshot(request_id: int, data: bytes) -> dict[str, Any]:
    return m.Snapshot(id=request_id, data=data).wire()


def console(request_id: int, stream: int, data: bytes) -> dict[str, Any]:
    return m.Console(id=request_id, stream=m.Stream(stream), data=data).wire()


def stdin_request(request_id: int, max_bytes: int) -> dict[str, Any]:
    return m.StdinRequest(id=request_id, max=max_bytes).wire()


class Misbehaving:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, message: dict[str, Any]) -> None:
        write_all(self.write_fd, encode_frame(message))

    def raw(self, data: bytes) -> None:
        write_all(self.write_fd, data)

    def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = read_frame(self.read_fd, HOST_FRAME_CAP)
        return message

    def greet(self) -> None:
        self.send(hello(time.monotonic_ns()))
        self.receive()

    def load(self) -> dict[str, Any]:
        """Greet, take Load, answer Loaded; the Boot that follows."""
        self.greet()
        self.send(loaded(self.receive()["id"], LOAD_TIMINGS))
        return self.receive()

    def boot(self) -> int:
        """Greet, take Load and Boot, answer both; the Boot's id."""
        request_id: int = self.load()["id"]
        self.ready(request_id)
        return request_id

    def ready(self, request_id: int) -> None:
        """Answer a Boot, as a real guest does: Starting, then Ready."""
        self.send(starting(request_id))
        self.send(ready(request_id, BOOT_TIMINGS))

    def next_invoke(self) -> int:
        self.boot()
        request_id: int = self.receive()["id"]
        return request_id


def forever() -> None:
    while True:
        time.sleep(3600)


def _garbage(g: Misbehaving) -> None:
    g.greet()
    g.raw(HEADER.pack(4) + b"\xc1\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
    forever()


def _oversized(g: Misbehaving) -> None:
    g.greet()
    g.raw(HEADER.pack(0x7FFFFFFF))  # and no body: the host must not wait for it
    forever()


def _unknown_tag(g: Misbehaving) -> None:
    g.greet()
    request_id = g.receive()["id"]
    g.send({"type": "Gimme", "id": request_id})
    forever()


def _wrong_types(g: Misbehaving) -> None:
    g.greet()
    request_id = g.receive()["id"]
    g.send({"type": "Exited", "id": request_id, "code": "3"})
    forever()


def _wrong_id(g: Misbehaving) -> None:
    g.greet()
    request_id = g.receive()["id"]
    g.send(loaded(request_id + 41, LOAD_TIMINGS))
    forever()


def _not_a_map(g: Misbehaving) -> None:
    g.greet()
    g.send([1, 2, 3])  # type: ignore[arg-type]
    forever()


def _flood(g: Misbehaving) -> None:
    request_id = g.next_invoke()
    frame = encode_frame(console(request_id, 1, b"."))
    batch = frame * 1000
    while True:
        g.raw(batch)


def _big_console(g: Misbehaving) -> None:
    request_id = g.next_invoke()
    g.send(console(request_id, 1, b"x" * (70 * 1024)))
    forever()


def _code_uninvited(g: Misbehaving) -> None:
    g.greet()
    request_id = g.receive()["id"]  # a Load that names no code cache
    g.send(code(request_id, b"KNDLCODE"))
    forever()


def _code_flood(g: Misbehaving) -> None:
    g.greet()
    request_id = g.receive()["id"]
    frame = encode_frame(code(request_id, b"x" * CODE_CHUNK))
    while True:  # an endless "cache entry"
        g.raw(frame)


def _code_dribble(g: Misbehaving) -> None:
    """The review's attack: an endless "entry" in 2-byte Code frames, each a decode and a
    validation for the host."""
    g.greet()
    request_id = g.receive()["id"]
    batch = encode_frame(code(request_id, b"xx")) * 1000
    while True:
        g.raw(batch)


def _code_after_starting(g: Misbehaving) -> None:
    """What a module that subverted its guest in the start function would try: plant a
    cache entry for every later guest of the module."""
    request_id = g.load()["id"]
    g.send(starting(request_id))
    g.send(code(request_id, b"KNDLCODE"))
    forever()


def _ready_unannounced(g: Misbehaving) -> None:
    g.send(ready(g.load()["id"], BOOT_TIMINGS))  # no Starting before it
    forever()


def _console_before_starting(g: Misbehaving) -> None:
    g.send(console(g.load()["id"], 1, b"before any code ran\n"))
    forever()


def _code_after_a_hit(g: Misbehaving) -> None:
    g.greet()
    request_id = g.receive()["id"]
    g.send(code(request_id, b"KNDLCODE"))
    g.send({**loaded(request_id, LOAD_TIMINGS), "cache": "hit"})
    forever()


def _console_while_idle(g: Misbehaving) -> None:
    request_id = g.boot()
    g.send(console(request_id, 1, b"unasked\n"))
    forever()


def _stdin_twice(g: Misbehaving) -> None:
    request_id = g.next_invoke()
    # One write, so the host cannot answer the first request before it sees the second.
    g.raw(encode_frame(stdin_request(request_id, 10)) * 2)
    forever()


def _file_calls_flood(g: Misbehaving) -> None:
    request_id = g.next_invoke()
    write = m.FileCall(id=request_id, op=m.FileOp.WRITE, handle=0, numbers=[], data=b"x")
    # One write, so the host answers none before it sees them all.
    g.raw(encode_frame(write.wire()) * (m.MAX_FILE_CALLS + 1))
    forever()


def _close_pipes(g: Misbehaving) -> None:
    g.greet()
    os.close(g.write_fd)
    os.close(g.read_fd)
    forever()


def _exit_silently(g: Misbehaving) -> None:
    g.greet()
    g.receive()  # Load
    os._exit(0)


def _truncated(g: Misbehaving) -> None:
    g.greet()
    frame = encode_frame(loaded(1, LOAD_TIMINGS))
    g.raw(frame[: len(frame) // 2])
    os._exit(0)


def _silent(g: Misbehaving) -> None:
    g.load()
    forever()  # never answers Boot


def _no_hello(g: Misbehaving) -> None:
    forever()


def _bad_version(g: Misbehaving) -> None:
    g.send({**hello(time.monotonic_ns()), "version": PROTOCOL_VERSION + 98})
    forever()


def _segfault(g: Misbehaving) -> None:
    g.next_invoke()
    os.kill(os.getpid(), signal.SIGSEGV)


def _spin(g: Misbehaving) -> None:
    """Burns CPU when invoked (for CPU-limit tests: the real sandbox sets RLIMIT_CPU)."""
    from guestproc import sandbox

    boot = g.load()
    sandbox.limit_running(0, 0, boot["limits"]["cpu_seconds"])
    g.ready(boot["id"])
    g.receive()
    while True:
        pass


def _hog_memory(g: Misbehaving) -> None:
    """Allocates without bound after the real sandbox's memory backstop is applied."""
    from guestproc import sandbox

    boot = g.load()
    sandbox.limit_running(boot["limits"]["memory_bytes"], 0, None)
    g.ready(boot["id"])
    g.receive()
    hoard = []
    try:
        while True:
            hoard.append(bytearray(1 << 20))
    except MemoryError:
        hoard.clear()
        from protocol.messages import GuestExitStatus

        os._exit(GuestExitStatus.OUT_OF_MEMORY)


def _outgrow(g: Misbehaving) -> None:
    """When invoked, takes memory of its own a little at a time (4 MiB every 5 ms, each page
    written) with no RLIMIT_DATA at all -- a guest past its kernel limit, as compromised
    code would be -- up to 1 GiB, then waits. Only the host's watchdog can stop it."""
    g.next_invoke()
    hoard = []
    for _ in range(256):
        hoard.append(bytearray(b"x") * (4 << 20))
        time.sleep(0.005)
    forever()


def _snapshot_unasked(g: Misbehaving) -> None:
    """A Snapshot in a Boot that asked for none (a guest's, not a throwaway's)."""
    request_id = g.load()["id"]
    g.send(starting(request_id))
    g.send(snapshot(request_id, b"\x80"))
    forever()


def _snapshot_before_starting(g: Misbehaving) -> None:
    g.send(snapshot(g.load()["id"], b"\x80"))
    forever()


def _snapshot_dribble(g: Misbehaving) -> None:
    request_id = g.load()["id"]
    g.send(starting(request_id))
    g.send(snapshot(request_id, b"\x80\x80"))
    g.send(snapshot(request_id, b"\x80"))
    forever()


def _snapshot_flood(g: Misbehaving) -> None:
    request_id = g.load()["id"]
    g.send(starting(request_id))
    piece = snapshot(request_id, b"\x00" * CODE_CHUNK)
    for _ in range(MAX_SNAPSHOT_BYTES // CODE_CHUNK + 1):
        g.send(piece)
    forever()


def _ready_without_snapshot(g: Misbehaving) -> None:
    g.ready(g.load()["id"])
    forever()


MODES: dict[str, Callable[[Misbehaving], None]] = {
    "garbage": _garbage,
    "oversized": _oversized,
    "unknown_tag": _unknown_tag,
    "wrong_types": _wrong_types,
    "wrong_id": _wrong_id,
    "not_a_map": _not_a_map,
    "flood": _flood,
    "big_console": _big_console,
    "console_while_idle": _console_while_idle,
    "code_uninvited": _code_uninvited,
    "code_flood": _code_flood,
    "code_dribble": _code_dribble,
    "code_after_starting": _code_after_starting,
    "ready_unannounced": _ready_unannounced,
    "console_before_starting": _console_before_starting,
    "code_after_a_hit": _code_after_a_hit,
    "snapshot_unasked": _snapshot_unasked,
    "snapshot_before_starting": _snapshot_before_starting,
    "snapshot_dribble": _snapshot_dribble,
    "snapshot_flood": _snapshot_flood,
    "ready_without_snapshot": _ready_without_snapshot,
    "stdin_twice": _stdin_twice,
    "file_calls_flood": _file_calls_flood,
    "close_pipes": _close_pipes,
    "exit_silently": _exit_silently,
    "truncated": _truncated,
    "silent": _silent,
    "no_hello": _no_hello,
    "bad_version": _bad_version,
    "segfault": _segfault,
    "spin": _spin,
    "hog_memory": _hog_memory,
    "outgrow": _outgrow,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in MODES:
        sys.stderr.write(f"usage: python -S -P misbehave.py {{{','.join(MODES)}}} R W\n")
        return 2
    guest = Misbehaving(int(argv[1]), int(argv[2]))
    # The host hanging up on us is fine: that is what we provoked.
    with contextlib.suppress(BrokenPipeError, EOFError):
        MODES[argv[0]](guest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

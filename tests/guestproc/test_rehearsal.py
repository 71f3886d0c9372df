"""A template's rehearsal (``guestproc.rehearsal``), in-process with the confinement steps
stubbed out: it runs no module code, leaves the session as it was, and warms the code."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from guestproc.channel import Channel
from guestproc.rehearsal import Rehearsal
from guestproc.running import invoke
from guestproc.session import Session
from protocol import messages as m
from protocol.frames import encode_frame, read_frame
from protocol.messages import GUEST_FRAME_CAP
from tests.framework.paths import fixture

FUEL = 10**6


@pytest.fixture
def booted_session(unconfined: None) -> Iterator[tuple[Session, int, int]]:
    """A session booted on exports.wasm with fuel; (it, the host's write end, read end)."""
    to_guest_read, to_guest_write = os.pipe()
    from_guest_read, from_guest_write = os.pipe()
    session = Session(Channel(to_guest_read, from_guest_write), template=True)
    assert session.handle(m.Load(id=1, module=fixture("exports").read_bytes()))
    limits = m.BootLimits(memory_bytes=1 << 20, cpu_seconds=None, call_depth=1000, fuel=FUEL)
    restore = m.StartMode.RESTORE
    assert session.handle(m.Boot(id=2, args=[b"x"], env=[], limits=limits, start=restore))
    for expected in (m.MessageType.LOADED, m.MessageType.STARTING, m.MessageType.READY):
        assert read_frame(from_guest_read, GUEST_FRAME_CAP)["type"] == expected
    yield session, to_guest_write, from_guest_read
    for fd in (to_guest_read, to_guest_write, from_guest_read, from_guest_write):
        os.close(fd)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_rehearsal_runs_no_module_code_and_leaves_the_session_as_it_was(
    booted_session: tuple[Session, int, int],
) -> None:
    session, to_guest, from_guest = booted_session
    booted = session.booted
    assert booted is not None and booted.metered
    fuel_before = booted.instance.fuel.used
    channel_fds = session.channel.read_fd, session.channel.write_fd
    request_id = session.replies.request_id
    fds_before = _open_fds()
    rehearsal = Rehearsal()
    rehearsal.run(session, booted)

    assert booted.instance.fuel.used == fuel_before  # not one instruction of the module ran
    assert (session.channel.read_fd, session.channel.write_fd) == channel_fds
    assert session.replies.request_id == request_id
    assert _open_fds() == fds_before  # its pipes are closed
    os.set_blocking(from_guest, False)
    with pytest.raises(BlockingIOError):  # nothing of it reached the host
        os.read(from_guest, 1)
    os.set_blocking(from_guest, True)

    # The session serves the host as before.
    os.write(to_guest, encode_frame(m.Invoke(id=3, export="add", args=[2, 3]).wire()))
    assert session.handle(session.channel.receive())
    reply = read_frame(from_guest, GUEST_FRAME_CAP)
    assert reply["type"] == m.MessageType.RESULT and reply["id"] == 3
    assert reply["results"] == [["i32", 5]]


def test_a_rehearsal_warms_the_code_a_request_runs(
    booted_session: tuple[Session, int, int],
) -> None:
    """CPython 3.11 rewrites a function's code, specialised, once it has been called often
    enough (run alone, this test sees ``invoke`` go from cold to rewritten)."""
    session, _, _ = booted_session
    assert session.booted is not None
    code = invoke.__code__
    Rehearsal().run(session, session.booted)
    assert code._co_code_adaptive != code.co_code  # type: ignore[attr-defined]


def test_a_template_that_ends_before_boot_closes_its_rehearsal() -> None:
    fds_before = _open_fds()
    Rehearsal().close()
    assert _open_fds() == fds_before

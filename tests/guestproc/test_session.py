"""The guest's request handling in-process, with the confinement steps stubbed out (they
would sandbox the test process itself)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from guestproc import confinement
from guestproc.channel import Channel
from guestproc.session import Session
from protocol import messages as m
from protocol.frames import HEADER, decode_body
from protocol.models import parse_guest_message
from tests.framework.paths import fixture


@pytest.fixture
def session(unconfined: None) -> Iterator[Session]:
    to_guest_read, to_guest_write = os.pipe()
    from_guest_read, from_guest_write = os.pipe()
    os.set_blocking(from_guest_write, False)
    yield Session(Channel(to_guest_read, from_guest_write))
    for fd in (to_guest_read, to_guest_write, from_guest_read, from_guest_write):
        os.close(fd)


def test_the_metered_cache_entry_is_let_go_before_the_running_bound(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Boot's entry can be 32 MiB: it must not count against the running bound (RLIMIT_DATA
    is set from what the guest holds then), so nothing may still refer to it."""
    entry = b"K" * (1 << 20)  # not a valid entry: the guest compiles afresh, as on a miss
    references: list[int] = []

    def at_running_bound(*args: object, **kwargs: object) -> None:
        references.append(sys.getrefcount(entry))

    monkeypatch.setattr(confinement, "before_running", at_running_bound)
    module = fixture("exports").read_bytes()
    assert session.handle(m.Load(id=1, module=module, cached=b""))
    limits = m.BootLimits(memory_bytes=1 << 20, cpu_seconds=None, call_depth=1000, fuel=10**6)
    held_by_this_test = sys.getrefcount(entry)
    # Not inside an assert: pytest's rewriting would keep the message for its report.
    served = session.handle(m.Boot(id=2, args=[b"x"], env=[], limits=limits, cached=entry))
    assert served
    assert references == [held_by_this_test]  # nothing in the guest holds it any more
    assert session.booted is not None


@pytest.mark.parametrize("request_id", [0, 7, 300, 1 << 40, m.REQUEST_ID_MAX])
def test_the_out_of_memory_frame_answers_the_request_being_served(
    session: Session, request_id: int
) -> None:
    """The frame is encoded once and each request writes its id into it: what the host reads
    must still be a ``LimitReached(memory)`` for that request, whatever the id's size."""
    assert not session.out_of_memory_frame  # no request yet: nothing to answer
    session.replies.start(5)
    session.replies.start(request_id)
    frame = bytes(session.out_of_memory_frame)
    body = frame[HEADER.size :]
    assert HEADER.unpack(frame[: HEADER.size])[0] == len(body)
    reply = parse_guest_message(decode_body(body))  # the host's reader
    assert isinstance(reply, m.LimitReached)
    assert (reply.id, reply.resource) == (request_id, m.Limit.MEMORY)
    assert reply.message == "the guest process ran out of memory (its RLIMIT_DATA)"

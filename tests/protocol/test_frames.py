"""The frame codec: length + msgpack, the cap checked before the body, strict bodies."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.frames import (
    HEADER,
    FrameDecoder,
    FrameTooLarge,
    MalformedFrame,
    TruncatedFrame,
    decode_body,
    encode_frame,
    read_frame,
    write_frame,
)

SAMPLE = {"type": "Console", "id": 7, "stream": 1, "data": b"hi\n", "nested": [1, -2, 3.5, None]}


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_a_frame_is_a_big_endian_length_and_one_msgpack_value() -> None:
    frame = encode_frame(SAMPLE)
    (length,) = HEADER.unpack(frame[:4])
    assert length == len(frame) - 4
    assert msgpack.unpackb(frame[4:], raw=False) == SAMPLE


def test_round_trip_through_a_pipe(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    write_frame(write_end, SAMPLE)
    write_frame(write_end, [1, 2])
    assert read_frame(read_end, cap=1024) == SAMPLE
    assert read_frame(read_end, cap=1024) == [1, 2]
    os.close(write_end)
    with pytest.raises(EOFError):
        read_frame(read_end, cap=1024)


def test_encoding_over_the_cap_is_refused() -> None:
    with pytest.raises(FrameTooLarge) as caught:
        encode_frame(b"x" * 100, cap=50)
    assert caught.value.length > 50 and caught.value.cap == 50


def test_read_frame_refuses_an_oversized_header_without_waiting_for_the_body(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe
    os.write(write_end, HEADER.pack(10_000_000))  # and no body at all
    outcome: list[BaseException] = []

    def reader() -> None:
        try:
            read_frame(read_end, cap=1000)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join(timeout=5)
    stuck = thread.is_alive()
    if stuck:
        os.close(write_end)  # unblock it before failing
        thread.join()
    assert not stuck, "read_frame waited for the body of an oversized frame"
    assert isinstance(outcome[0], FrameTooLarge)
    assert outcome[0].length == 10_000_000 and outcome[0].cap == 1000


def test_decoder_refuses_an_oversized_header_on_its_own() -> None:
    decoder = FrameDecoder(cap=64)
    with pytest.raises(FrameTooLarge):
        decoder.feed(HEADER.pack(65))
    # Broken for good: the same error again, whatever comes next.
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"more")


def test_a_frame_exactly_at_the_cap_is_fine() -> None:
    body = msgpack.packb(b"x" * 10, use_bin_type=True)
    decoder = FrameDecoder(cap=len(body))
    assert decoder.feed(HEADER.pack(len(body)) + body) == [b"x" * 10]


def test_decoder_truncation_is_reported_at_the_end() -> None:
    frame = encode_frame(SAMPLE)
    decoder = FrameDecoder(cap=1024)
    assert decoder.feed(frame[:-3]) == []
    assert decoder.pending > 0
    with pytest.raises(TruncatedFrame):
        decoder.finish()
    half_header = FrameDecoder(cap=1024)
    half_header.feed(frame[:2])
    with pytest.raises(TruncatedFrame):
        half_header.finish()
    clean = FrameDecoder(cap=1024)
    clean.feed(frame)
    clean.finish()  # between frames: a clean end


def test_read_frame_truncated_body(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    frame = encode_frame(SAMPLE)
    os.write(write_end, frame[:-1])
    os.close(write_end)
    with pytest.raises(TruncatedFrame) as caught:
        read_frame(read_end, cap=1024)
    assert caught.value.expected == len(frame)


def test_read_frame_truncated_header(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    os.write(write_end, b"\x00\x00")
    os.close(write_end)
    with pytest.raises(TruncatedFrame):
        read_frame(read_end, cap=1024)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\xc1", "0xc1 is never valid msgpack"),
        (b"", "an empty body holds no value"),
        (msgpack.packb(1) + msgpack.packb(2), "two values in one frame"),
        (msgpack.packb({1: "int key"}), "map keys must be strings"),
        (msgpack.packb(msgpack.ExtType(5, b"xx")), "extension types are refused"),
        (b"\xa3\xff\xfe\xfd", "a str that is not UTF-8"),
        (b"\x92\x01", "an array cut short"),
    ],
)
def test_malformed_bodies(body: bytes, why: str) -> None:
    with pytest.raises(MalformedFrame):
        decode_body(body)
    decoder = FrameDecoder(cap=1024)
    with pytest.raises(MalformedFrame):
        decoder.feed(HEADER.pack(len(body)) + body)


def test_timestamps_are_refused() -> None:
    import datetime

    packed = msgpack.packb(datetime.datetime.now(datetime.UTC), datetime=True)
    with pytest.raises(MalformedFrame):
        decode_body(packed)


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    body = b"\x91" * 100_000 + b"\xc0"  # 100k nested one-element arrays
    with pytest.raises(MalformedFrame):
        decode_body(body)


messages = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(values=st.lists(messages, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 200)))
def test_any_chunking_gives_back_the_same_frames(values: list[object], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(v) for v in values)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder(cap=1 << 20)
    got: list[object] = []
    for start, end in itertools.pairwise(points):
        got += decoder.feed(stream[start:end])
    decoder.finish()
    assert got == values


@given(garbage=st.binary(max_size=300))
def test_garbage_never_escapes_as_anything_but_a_frame_error(garbage: bytes) -> None:
    from protocol.frames import FrameError

    decoder = FrameDecoder(cap=256)
    try:
        decoder.feed(garbage)
        decoder.finish()
    except FrameError:
        pass


def test_decoder_is_fast_enough_for_many_small_frames() -> None:
    frame = encode_frame({"type": "Console", "id": 1, "stream": 1, "data": b"x" * 60})
    stream = frame * 20_000
    decoder = FrameDecoder(cap=1024)
    started = time.perf_counter()
    count = 0
    for offset in range(0, len(stream), 65536):
        count += len(decoder.feed(stream[offset : offset + 65536]))
    assert count == 20_000
    assert time.perf_counter() - started < 5.0

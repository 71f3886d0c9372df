"""What a start function left, between processes: sent by the guest that ran it, installed by
a template that never runs module code (``protocol.messages.StartMode``).

::

    throwaway guest, Boot(start=snapshot)             template, Boot(start=restore, snapshot)
      instantiate: the start function runs              instantiate: it does not
      send(): engine state + WASI descriptors           install(): unpack with bounds, check
        ──▶ msgpack ──▶ Snapshot, Snapshot, ...           every part against the module, write
                        │                                 (SnapshotError: LoadFailed(snapshot))
                        └──▶ host: joins, caps ──▶ Boot.snapshot ──┘

The bytes come from a process where module code ran, so from a process that may have been
subverted: reading them builds ints, bytes, lists and one map, nothing else
(``msgpack`` with every length bounded), and ``engine.snapshot.install`` checks the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgpack  # type: ignore[import-untyped]

from protocol import messages as msg

from .engine import Instance
from .engine.snapshot import CHUNK, SnapshotError, capture, install
from .replies import Replies
from .wasi import WasiEnvironment

FORMAT = 1
_KEYS = {"format", "instance", "descriptors"}


class TooLarge(Exception):
    """The state is over ``MAX_SNAPSHOT_BYTES``."""


def pieces(instance: Instance, wasi: WasiEnvironment) -> Iterator[bytes]:
    """What the start function left, as one snapshot, in pieces of up to about
    ``CODE_CHUNK`` bytes: packed as it goes, so that it costs the guest little more memory
    than one chunk of linear memory (pieces are views of it until packed)."""
    packer = msgpack.Packer(use_bin_type=True)
    state = capture(instance, views=True)
    yield packer.pack_map_header(len(_KEYS))
    yield packer.pack("format") + packer.pack(FORMAT)
    yield packer.pack("descriptors") + packer.pack(wasi.descriptor_state())
    yield packer.pack("instance") + packer.pack_map_header(len(state))
    for key, value in state.items():
        yield packer.pack(key)
        if key != "memories":
            yield packer.pack(value)
            continue
        yield packer.pack_array_header(len(value))
        for pages, memory_pieces in value:
            yield packer.pack_array_header(2) + packer.pack(pages)
            yield packer.pack_array_header(len(memory_pieces))
            for piece in memory_pieces:
                yield packer.pack(piece)
            memory_pieces.clear()  # the views go: memory may grow again


def send(replies: Replies, instance: Instance, wasi: WasiEnvironment) -> None:
    """The snapshot in ``Snapshot`` frames of a full ``CODE_CHUNK`` each but the last,
    after the console output that came before it; ``TooLarge`` past the limit (the host
    then has the frames sent so far, and the reply that says why)."""
    replies.console.flush()
    buffer = bytearray()
    sent = 0
    for piece in pieces(instance, wasi):
        buffer += piece
        while len(buffer) >= msg.CODE_CHUNK:
            sent += _send_chunk(replies, buffer, sent)
    while buffer:
        sent += _send_chunk(replies, buffer, sent)


def _send_chunk(replies: Replies, buffer: bytearray, sent: int) -> int:
    size = min(len(buffer), msg.CODE_CHUNK)
    if sent + size > msg.MAX_SNAPSHOT_BYTES:
        raise TooLarge(
            f"the start function left {sent + size} bytes of state or more (memory that is "
            f"not zero, tables, globals), over the snapshot limit of {msg.MAX_SNAPSHOT_BYTES}"
        )
    replies.send_during(msg.Snapshot(id=replies.request_id, data=bytes(buffer[:size])))
    del buffer[:size]
    return size


def restore(instance: Instance, wasi: WasiEnvironment, take: Callable[[], bytes | None]) -> None:
    """Install the snapshot that ``take`` hands over (and forgets: its bytes go once they
    are unpacked) in ``instance`` (fresh, its start function not run) and ``wasi``;
    ``SnapshotError`` naming what does not fit (nothing is changed then)."""
    data = take()
    if data is None:
        raise SnapshotError("no snapshot of what the start function left")
    # No list in a sound snapshot is longer than a table or memory of the instance can be,
    # so a hostile one cannot make a small message into a large list.
    longest = max(
        [256, *(t.max_size for t in instance.tables), *(m.max_pages for m in instance.memories)]
    )
    try:
        state = msgpack.unpackb(
            data,
            raw=False,
            max_str_len=16,
            max_bin_len=CHUNK,
            max_array_len=longest,
            max_map_len=5,  # the most keys of any map in it (``InstanceState``)
            use_list=True,
            strict_map_key=True,
        )
    except Exception as exc:  # msgpack raises several kinds for bytes that do not unpack
        raise SnapshotError(f"the snapshot does not unpack: {type(exc).__name__}: {exc}") from None
    del data
    if not isinstance(state, dict) or set(state) != _KEYS or state["format"] != FORMAT:
        raise SnapshotError(f"a snapshot is a map of {', '.join(sorted(_KEYS))}, format {FORMAT}")
    try:
        descriptors = wasi.descriptor_state()
        wasi.install_descriptors(state["descriptors"])
    except ValueError as exc:
        raise SnapshotError(f"descriptors: {exc}") from None
    try:
        install(instance, state["instance"])
    except SnapshotError:
        wasi.install_descriptors(descriptors)
        raise

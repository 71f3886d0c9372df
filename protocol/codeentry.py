"""Code cache entries: the envelope both sides check (the contents are the engine's).

::

    magic "KNDLCODE" | format u16 | metered u8 | payload length u64 | payload crc32 u32
    | payload

The guest makes entries (``guestproc.codecache``) and sends them to the host in ``Code``
frames; the host checks each before it writes it to disk (``host.codecache``), and again
before it sends it back in a later ``Load``, where the guest checks it once more before it
unmarshals anything. The checks catch accidents -- a crash mid-write, a full disk, a file
from elsewhere -- not malice: whoever can write the cache directory can run code in guests
(see ``host.codecache``).

The host files entries by engine key (``engine_key``: the engine's sources and the Python
version) and module digest, both of which it computes: the guest, which must start fast,
needs neither ``hashlib`` nor ``pathlib``, only ``zlib`` for the checksum.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache

from .messages import MAX_ENTRY_BYTES

MAGIC = b"KNDLCODE"
# 5: i32x4 lane mode; 4: scratch locals _w, _f, no LD_S8/16/32; 3: marshal only; 2: pickle
FORMAT = 5
HEADER = struct.Struct("<8sHBQI")


class EntryError(Exception):
    """An entry that cannot be used; the text says why."""


@cache
def engine_key() -> bytes:
    """A digest of everything compiled code depends on: the engine's sources, the
    interpreter's version and its marshal format (host side: it imports ``hashlib``)."""
    import hashlib
    import marshal
    import sys
    from pathlib import Path

    sources = Path(__file__).resolve().parent.parent / "guestproc" / "engine"
    digest = hashlib.sha256()
    digest.update(f"{sys.implementation.cache_tag} {sys.version} {marshal.version}".encode())
    for source in sorted(sources.rglob("*.py")):
        digest.update(source.relative_to(sources).as_posix().encode() + b"\0")
        digest.update(source.read_bytes())
    return digest.digest()


def module_digest(module_bytes: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(module_bytes).digest()


def seal(payload: bytes, metered: bool) -> bytes:
    """The entry holding ``payload``."""
    header = HEADER.pack(MAGIC, FORMAT, metered, len(payload), zlib.crc32(payload))
    return header + payload


def open_entry(entry: bytes, metered: bool) -> memoryview:
    """The payload of ``entry``; ``EntryError`` unless it is whole, undamaged and metered as
    asked."""
    if len(entry) > MAX_ENTRY_BYTES + HEADER.size:
        raise EntryError(f"{len(entry)} bytes, over the limit of {MAX_ENTRY_BYTES}")
    if len(entry) < HEADER.size:
        raise EntryError(f"truncated: {len(entry)} bytes, shorter than the header")
    magic, version, entry_metered, size, checksum = HEADER.unpack_from(entry)
    if magic != MAGIC:
        raise EntryError("not a Kindling code cache entry (bad magic)")
    if version != FORMAT:
        raise EntryError(f"entry format {version}, this engine reads {FORMAT}")
    if bool(entry_metered) != metered:
        raise EntryError("metered differently")
    payload = memoryview(entry)[HEADER.size :]
    if len(payload) != size:
        raise EntryError(f"truncated: payload of {len(payload)} bytes, header says {size}")
    if zlib.crc32(payload) != checksum:
        raise EntryError("damaged: the payload checksum does not match")
    return payload

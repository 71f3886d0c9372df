"""The only code the host and its guests share: frames, messages, and (host-only) models.

::

    host (trusted)                                        guest process (untrusted)
    ──────────────                                        ─────────────────────────
    protocol.models  ◀── validate every frame ──┐
    protocol.config      (pydantic)             │
                                                │
    protocol.frames  ── 4-byte length + msgpack ─┴──────▶ protocol.frames
    protocol.messages   pipe host->guest, pipe guest->host   protocol.messages

- ``frames``: the codec. A frame is a big-endian u32 length and one msgpack value; every
  reader caps the length before it reads the body.
- ``messages``: the message types (tagged records with an ``id``), their constructors, the
  size caps and vocabularies both sides agree on.
- ``models`` (host only): pydantic models of everything a guest may send.
- ``config`` (host only): the guest configuration model, for TOML files and the CLI.

Importing ``protocol`` itself loads only ``frames`` and ``messages`` (msgpack and the
standard library), because the guest imports it; ``models`` and ``config`` load pydantic
and are imported explicitly by the host.
"""

from .frames import (
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    MalformedFrame,
    TruncatedFrame,
    decode_body,
    encode_frame,
    read_frame,
    write_frame,
)
from .messages import PROTOCOL_VERSION, LoadStage, MessageType

__all__ = [
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "LoadStage",
    "MalformedFrame",
    "MessageType",
    "TruncatedFrame",
    "decode_body",
    "encode_frame",
    "read_frame",
    "write_frame",
]

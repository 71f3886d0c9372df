"""The only code the host and its guests share: frames, messages, and (host-only) models.

::

    host (trusted)                                        guest process (untrusted)
    ──────────────                                        ─────────────────────────
    protocol.models  ◀── validate every frame ──┐         protocol.schema (checker)
      (pydantic, derived from the declarations) │           ▲ checks every request
                                                │           │
    protocol.frames  ── 4-byte length + msgpack ─┴──────▶ protocol.frames
    protocol.messages   pipe host->guest, pipe guest->host   protocol.messages

- ``frames``: the codec. A frame is a big-endian u32 length and one msgpack value; every
  reader caps the length before it reads the body.
- ``messages``: every message of every channel (guest pipes, a template's control socket),
  declared once as records, and the size caps and vocabularies (enums) both sides agree on.
- ``schema``: how records are declared, and the guest's checker of them.
- ``models`` (host only): the pydantic models derived from the same declarations.
- ``limits``: the memory bounds both sides compute; ``codeentry``: the code cache format.

Importing ``protocol`` itself loads only ``frames`` and ``messages`` (msgpack and the
standard library), because the guest imports it; ``models`` loads pydantic and is imported
explicitly by the host. The guest configuration model is the host's (``host.config``).
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

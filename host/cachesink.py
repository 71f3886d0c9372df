"""The host's side of the code cache for one guest: entries out in Load and Boot, new
entries in from ``Code`` frames.

::

    Load(module, cached=entry | b"")   ◀── read(unmetered)      host.codecache (files)
    Boot(..., cached=entry | b"")      ◀── read(metered), when fuel is set
    Code, Code, ... then Loaded/Ready  ──▶ keep(): join, write  ──▶ host.codecache

A template is given no entry (it compiles afresh: it keeps ``clone`` in its seccomp filter
for life, and a guest unmarshals an entry only under the running filter), but may still
send one. A guest may send ``Code`` only while it works on a Load or a Boot, only when the host keeps
a cache for it, and only before it says ``Starting`` (``host.guest``): an entry comes from a
guest in which none of the module's code has run, so it is as trustworthy as compiling the
module afresh. Every piece but the last is a full ``CODE_CHUNK``, and the pieces of one
entry may not pass ``MAX_ENTRY_BYTES`` together. The entry is kept only if the reply says
the guest compiled afresh (``miss``, or an entry it ``rejected``), never after a ``hit``.
"""

from __future__ import annotations

from protocol.messages import MAX_ENTRY_BYTES, Code

from . import codecache
from .chunked import ChunkedPayload


class CacheSink:
    """One guest's code cache traffic, for the module with ``digest``, in ``directory``."""

    def __init__(self, directory: str, digest: bytes, give_entries: bool = True) -> None:
        self.directory = directory
        self.digest = digest
        self.give_entries = give_entries  # False: a template's, which loads no entry
        self._entry = ChunkedPayload("Code", MAX_ENTRY_BYTES)

    def entry(self, metered: bool) -> bytes:
        """The entry to send with the request: the cached one, or b"" for none."""
        if not self.give_entries:
            return b""
        return codecache.read(self.directory, self.digest, metered)

    def take(self, message: Code) -> str | None:
        """Keep a piece of a new entry; a protocol violation's description if too big, or
        if it follows a short piece (every piece but the last is a full ``CODE_CHUNK``)."""
        return self._entry.take(message.data)

    def unasked(self, status: str) -> str | None:
        """What is wrong with the pieces kept so far, given what the reply says the cache
        did (``status``); None if nothing: an entry comes only from compiling afresh."""
        if not self._entry.empty and not (status == "miss" or status.startswith("rejected")):
            return f"a code cache entry with a reply that says {status!r}"
        return None

    def keep(self, metered: bool) -> str | None:
        """Write the entry the guest sent for the request just answered, if it sent one;
        what the cache did with it (None: nothing was sent)."""
        if self._entry.empty:
            return None
        return codecache.write(self.directory, self.digest, metered, self._entry.join())

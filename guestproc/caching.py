"""The guest's side of the host's code cache: entries in, entries out.

::

    Load(cached=entry) / Boot(cached=entry) ──▶ from_cache ──▶ CompiledModule, "hit"
                                                           └──▶ None, "miss" | "rejected: why"
    a module compiled afresh ──▶ send_entry ──▶ every function compiled ──▶ Code, Code, ...

``cached`` is left out of ``Load`` and ``Boot`` when the host keeps no cache; then none of
this runs. Entries are made and read by ``codecache`` (pickle, marshal), which only a guest
with a cache imports -- before its hardening, at ``Load`` (``loading``): the imports here
stay inside the functions so that the others never pay for it.
"""

from __future__ import annotations

from protocol import messages as msg

from .engine import CompiledModule, CompileError
from .replies import Replies


def from_cache(entry: bytes, metered: bool) -> tuple[CompiledModule | None, str]:
    """The module compiled, from the host's code cache entry, or None; and what the
    cache gave (``hit``, ``miss``, ``rejected: why``)."""
    if not entry:
        return None, "miss"
    from protocol.codeentry import EntryError

    from .codecache import unpack

    try:
        return unpack(entry, metered), "hit"
    except EntryError as exc:
        return None, f"rejected: {exc}"


def send_entry(replies: Replies, compiled: CompiledModule) -> None:
    """Compile all of ``compiled`` and send it to the host as a code cache entry."""
    from .codecache import pack

    try:
        entry = pack(compiled)
    except CompileError:
        return  # the function that does not translate reports it at its first call
    if len(entry) > msg.MAX_ENTRY_BYTES:
        return  # too large to keep: compiled afresh each time
    for start in range(0, len(entry), msg.CODE_CHUNK):
        piece = entry[start : start + msg.CODE_CHUNK]
        replies.send_during(msg.Code(id=replies.request_id, data=piece))

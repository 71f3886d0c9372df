"""The guest's side of the host's code cache: entries in, entries out.

::

    Load(cached=entry) / Boot(cached=entry) ──▶ from_cache ──▶ CompiledModule, "hit"
                                                           └──▶ None, "miss" | "rejected: why"
    a module compiled afresh ──▶ send_entry ──▶ every function compiled ──▶ Code, Code, ...

``cached`` is left out of ``Load`` and ``Boot`` when the host keeps no cache; then none of
this runs. Entries are made and read by ``codecache`` (marshal), which only a guest
with a cache imports -- before its hardening, at ``Load`` (``loading``): the imports here
stay inside the functions so that the others never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol import messages as msg

from .engine import CompiledModule, CompileError, DecodeError, Module
from .replies import Replies


def from_cache(
    entry: bytes, metered: bool, module: Callable[[], Module]
) -> tuple[CompiledModule | None, str]:
    """The module compiled, from the host's code cache entry, or None; and what the
    cache gave (``hit``, ``miss``, ``rejected: why``). ``module`` gives the module the entry
    was made of (its function bodies are not needed), called only if there is an entry."""
    if not entry:
        return None, "miss"
    from protocol.codeentry import EntryError

    from .codecache import unpack

    try:
        return unpack(entry, metered, module()), "hit"
    except EntryError as exc:
        return None, f"rejected: {exc}"
    except DecodeError as exc:  # it decoded when the entry was made: compile afresh to say why
        return None, f"rejected: the module does not decode: {exc}"


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

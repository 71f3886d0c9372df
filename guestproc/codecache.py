"""Compiled modules as bytes: the contents of a code cache entry (``protocol.codeentry``).

The payload is the code object of every defined function, marshalled, and nothing else:
``marshal`` makes code objects and plain values only -- never an object of a class of the
entry's choosing, as unpickling would -- and runs none of them. The rest of the module comes
from the module's own bytes, which the host sent with the entry: decoded again, without the
function bodies (the entry stands for them) and without validating (the module was validated
when the entry was made; the host files entries under the module's digest).

Entries come only from guests in which none of the module's code had run (the host takes
no ``Code`` after ``Starting``), so an entry is as trustworthy as compiling afresh. ``unpack``
has the envelope checked -- magic, format, length, checksum -- *before* it unmarshals
anything: ``marshal`` is not safe on damaged bytes.
"""

from __future__ import annotations

import marshal
from types import CodeType

from protocol.codeentry import EntryError, open_entry, seal

from .engine import CompiledModule, Module


def pack(compiled: CompiledModule) -> bytes:
    """An entry for ``compiled`` (every function is compiled now if it was not yet)."""
    compiled.compile_all()
    codes = [compiled.function_code(i) for i in compiled.defined_indices()]
    return seal(marshal.dumps(codes), compiled.fuel)


def unpack(entry: bytes, metered: bool, module: Module) -> CompiledModule:
    """``module`` (decoded from the bytes the entry was made of) compiled, with the code in
    ``entry``; ``EntryError`` unless the entry is intact, metered as asked and shaped as a
    compiled ``module``: one code object per function the module defines."""
    payload = open_entry(entry, metered)
    try:
        codes = marshal.loads(payload)
    except MemoryError:
        raise  # not the entry's fault: the guest is out of memory (``limit(memory)``)
    except Exception as exc:  # intact bytes that still do not load: a bug, not damage
        raise EntryError(f"unreadable payload: {type(exc).__name__}: {exc}") from exc
    if type(codes) is not list or not all(type(code) is CodeType for code in codes):
        raise EntryError("unexpected payload contents")
    if len(codes) != len(module.functions):
        raise EntryError("the entry's code does not cover every function")
    return CompiledModule.from_code(module, metered, codes)

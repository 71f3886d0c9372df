"""Compiled modules as bytes: the contents of a code cache entry (``protocol.codeentry``).

The payload is the module with its function bodies dropped (instantiating needs the rest)
and the code object of every defined function, marshalled. ``unpack`` has the envelope
checked -- magic, format, length, checksum -- *before* it unpickles or
unmarshals anything: neither is safe on damaged bytes.
"""

from __future__ import annotations

import marshal
import pickle
from dataclasses import replace
from types import CodeType

from protocol.codeentry import EntryError, open_entry, seal

from .engine import CompiledModule, Module


def pack(compiled: CompiledModule) -> bytes:
    """An entry for ``compiled`` (every function is compiled now if it was not yet)."""
    compiled.compile_all()
    module = compiled.module
    bare = replace(module, functions=[replace(f, body=[]) for f in module.functions])
    codes = [compiled.function_code(i) for i in compiled.defined_indices()]
    payload = pickle.dumps((bare, marshal.dumps(codes)), protocol=pickle.HIGHEST_PROTOCOL)
    return seal(payload, compiled.fuel)


def unpack(entry: bytes, metered: bool) -> CompiledModule:
    """The compiled module in ``entry``; ``EntryError`` unless it is intact and metered as
    asked. (The host picked the entry by this engine's key and the module's digest.)"""
    payload = open_entry(entry, metered)
    try:
        bare, marshalled = pickle.loads(payload)
        codes = marshal.loads(marshalled)
    except MemoryError:
        raise  # not the entry's fault: the guest is out of memory (``limit(memory)``)
    except Exception as exc:  # intact bytes that still do not load: a bug, not damage
        raise EntryError(f"unreadable payload: {type(exc).__name__}: {exc}") from exc
    if not isinstance(bare, Module) or not isinstance(codes, list):
        raise EntryError("unexpected payload contents")
    if not all(isinstance(code, CodeType) for code in codes):
        raise EntryError("unexpected payload contents")
    if len(codes) != len(bare.functions):
        raise EntryError("the entry's code does not cover every function")
    return CompiledModule.from_code(bare, metered, codes)

"""``python -S -P tests/guests/subverted.py [--template] FDS...``: the real guest, with the hole
an engine bug would open: attacker-written Python running where module code runs.

For the security tests only, and in no shipped package (``tests.guests.subverted()`` is its
launcher). It is ``python -m guestproc`` in every respect -- the same start-up sandbox,
hardening, limits and protocol, forked from a template of its own kind -- except that an
``Invoke`` whose export name starts with ``python:`` runs the rest of the name as Python
inside the running guest, with everything a subverted engine would have, and answers with
what the payload left in ``result`` as console output (stdout) and an empty ``Result``.

A module whose bytes start with ``python:`` is the same hole one step earlier, in the
decoder: the rest runs at Load, under the loader's filter, and the Load fails with what the
payload left in ``result`` (an engine error the guest reports, ``load_failure(decode)``).

A code cache entry whose payload starts with ``python:`` is the same hole in ``marshal``: the
rest runs where the guest unmarshals the entry, and the entry is rejected with what the
payload left in ``result`` (the ``code_cache`` the host reports says ``rejected: payload:
...``).

A module with a start function and an export named ``python-start:SRC`` runs SRC where the
start function runs, right after it, with ``instance`` (the engine's) in scope: the payload
reports through the instance's own state (an exported mutable global, say), which is what
travels from there (``guestproc.snapshots``).
"""

from __future__ import annotations

import sys
from typing import Any

from guestproc import codecache, loading, running, session
from guestproc.engine import CompiledModule, DecodeError
from guestproc.replies import Replies
from protocol.codeentry import EntryError, open_entry
from protocol.messages import Invoke, Result

PAYLOAD = "python:"
START_PAYLOAD = "python-start:"

_real_invoke = running.invoke
_real_decode = loading.decode
_real_instantiate = CompiledModule.instantiate
_real_unpack = codecache.unpack


def _run(source: str, **scope: Any) -> str:
    """Run the attacker's ``source``; what it left in ``result``, or what it raised."""
    scope["result"] = "done"
    try:
        exec(source, scope)
        return str(scope["result"])
    except BaseException as exc:  # what the attacker saw, as the attacker would see it
        return f"{type(exc).__name__}: {exc}"


def _invoke(replies: Replies, booted: Any, message: Invoke) -> None:
    if not message.export.startswith(PAYLOAD):
        _real_invoke(replies, booted, message)
        return
    outcome = _run(message.export[len(PAYLOAD) :])
    replies.console.write(1, outcome.encode(errors="replace"))
    replies.send(Result(id=replies.request_id, results=[], fuel=None))


def _decode(module_bytes: bytes, bodies: bool = True) -> Any:
    if not module_bytes.startswith(PAYLOAD.encode()):
        return _real_decode(module_bytes, bodies)
    raise DecodeError(f"payload: {_run(module_bytes[len(PAYLOAD) :].decode())}")


def _instantiate(self: CompiledModule, *args: Any, **kwargs: Any) -> Any:
    instance = _real_instantiate(self, *args, **kwargs)
    if kwargs.get("run_start", True) and self.module.start is not None:
        for export in self.module.exports:
            if export.name.startswith(START_PAYLOAD):
                _run(export.name[len(START_PAYLOAD) :], instance=instance)
    return instance


def _unpack(entry: bytes, metered: bool, module: Any) -> Any:
    payload = bytes(open_entry(entry, metered))
    if not payload.startswith(PAYLOAD.encode()):
        return _real_unpack(entry, metered, module)
    raise EntryError(f"payload: {_run(payload[len(PAYLOAD) :].decode())}")


loading.decode = _decode
codecache.unpack = _unpack
CompiledModule.instantiate = _instantiate  # type: ignore[method-assign]
session.invoke = _invoke  # type: ignore[attr-defined]  # what Session.handle calls to run code

if __name__ == "__main__":
    from guestproc.__main__ import main

    sys.exit(main(sys.argv[1:]))

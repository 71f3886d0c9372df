"""Invoke: running an export, and how running the module's code ended, as a reply.

::

    Invoke(export, args) ──▶ the export ──▶ its arguments ──▶ engine.invoke ──▶ Result(fuel)
                               └─────────────────┴── Refused (no such function, arguments
                                                     that do not fit): the guest goes on
    code that did not return (here, or a start function at Boot) ──▶ report_ending:
        proc_exit           ──▶ Exited                         the guest stops
        a trap              ──▶ Trapped                        it goes on
        out of fuel         ──▶ LimitReached(fuel)             it stops
        host memory         ──▶ LimitReached(memory)           it stops
        a function that does not translate ──▶ LoadFailed(compile)   it stops
        any other exception ──▶ Trapped(internal_error)        it stops: the instance is suspect
    (after a start function at Boot the guest stops whatever the ending: it has no instance)

``MemoryError`` and the host's own errors (``replies.PASS_THROUGH``) are not the program's
ending: they end the guest process (``guest.serve_requests``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol import messages as msg
from protocol.messages import Invoke, Limit, LoadStage, RefusalReason, TrapKind, clip

from . import engine
from .backtrace import backtrace
from .engine import CompileError, Function, Instance, Module, Trap, TrapCode
from .replies import PASS_THROUGH, Replies, StopServing
from .values import ArgumentError, convert_arguments, encode_result
from .wasi import WasiExit

if TYPE_CHECKING:
    from .booting import BootedInstance


def invoke(replies: Replies, booted: BootedInstance, message: Invoke) -> None:
    """Serve ``Invoke``: reply ``Result`` or ``Refused``, or report how running ended
    (``StopServing`` when the guest cannot go on)."""
    instance = booted.instance
    export = message.export
    func = instance.exports.get(export)
    if not isinstance(func, Function):
        replies.send(_refused(replies, RefusalReason.NO_EXPORT, _no_function(instance, export)))
        return
    try:
        args = convert_arguments(func, export, message.args)
        if message.argv:
            booted.wasi.set_program(message.argv, message.environ)
        if message.stdin is not None:
            replies.given_stdin(message.stdin)
    except (ArgumentError, ValueError, TypeError) as exc:
        replies.send(_refused(replies, RefusalReason.ARGUMENTS, str(exc)))
        return
    try:
        raw = engine.invoke(func, args)
    except PASS_THROUGH:
        raise
    except BaseException as exc:
        if not report_ending(replies, exc, instance.compiled.module):
            raise StopServing from None
        return
    results = []
    # A loop: a comprehension would make a function object, and copy its pages, per call.
    for index, valtype in enumerate(func.type.results):
        results.append(encode_result(valtype, raw[index]))
    fuel = instance.fuel.used if booted.metered else None
    replies.send(msg.Result(id=replies.request_id, results=results, fuel=fuel))


def _no_function(instance: Instance, export: str) -> str:
    """Why ``export`` cannot be invoked, and what can."""
    functions = sorted(
        name for name, item in instance.exports.items() if isinstance(item, Function)
    )
    shown = ", ".join(functions[:20]) + (", ..." if len(functions) > 20 else "")
    exported = export in instance.exports
    what = "exports" if exported else "exports no function"
    kind = " but it is not a function" if exported else ""
    hint = " (it is not a WASI command: invoke one of its functions)" * (export == "_start")
    return f"the module {what} named {export!r}{kind}{hint}; its functions: {shown or 'none'}"


def _refused(replies: Replies, reason: RefusalReason, text: str) -> msg.Refused:
    return msg.Refused(id=replies.request_id, reason=reason, message=clip(text))


def report_ending(replies: Replies, exc: BaseException, module: Module | None = None) -> bool:
    """Report how running Wasm code ended with ``exc``; whether the guest can go on.
    ``module``: what names the functions of a trap's backtrace."""
    rid = replies.request_id
    if isinstance(exc, WasiExit):
        replies.send(msg.Exited(id=rid, code=exc.code & 0xFFFFFFFF))
        return False
    if isinstance(exc, Trap):
        if exc.code is TrapCode.OUT_OF_FUEL:
            replies.send(msg.LimitReached(id=rid, resource=Limit.FUEL, message=clip(str(exc))))
            return False
        if exc.code is TrapCode.HOST_MEMORY_EXHAUSTED:
            replies.send(msg.LimitReached(id=rid, resource=Limit.MEMORY, message=clip(str(exc))))
            return False
        frames = backtrace(exc, module) or None
        kind = TrapKind(exc.code.kind)
        replies.send(msg.Trapped(id=rid, kind=kind, message=clip(str(exc)), backtrace=frames))
        return True
    if isinstance(exc, CompileError):
        # Functions are translated on first call, so this can surface while running.
        text = clip(str(exc))
        replies.send(msg.LoadFailed(id=rid, stage=LoadStage.COMPILE, message=text))
        return False
    if isinstance(exc, Exception):
        # Not a trap: a bug in the engine or WASI. Contained; the instance is suspect.
        text = clip(f"{type(exc).__name__}: {exc}")
        replies.send(msg.Trapped(id=rid, kind=TrapKind.INTERNAL_ERROR, message=text))
        return False
    raise exc  # KeyboardInterrupt, SystemExit: not the program's doing

"""``Conversation``: the host's half of one guest's protocol -- every frame the guest sends,
checked against the request it claims to belong to, routed, and its replies settled.

::

    GuestConnection ─message_received─▶ Conversation
        Console ───────▶ OutputGate (quota, rate)      ─┐
        StdinRequest ──▶ StdinServer ─▶ StdinData      ─┤ each must name the request the
        FileCall ──────▶ FileBroker ──▶ FileAnswer     ─┤ guest works on, in a state that
        Code ──────────▶ CacheSink                     ─┤ allows it (``_in_request``)
        Snapshot ──────▶ ChunkedPayload                ─┤
        Starting ──────▶ stage CODE_STARTED            ─┘
        a final reply ─▶ checks, then the request's future settles (``_on_final_reply``)

``Guest`` (``host.guest``) is a ``Conversation`` with a process: it sets the parts up in
``begin``, sends requests, and owns the process's lifecycle. What only it can do is asked
of it through four methods: ``end`` (kill it now, with this ending), ``_on_hello``,
``_exit_expected`` (a reply that ends the program) and ``_load_answered``.

The first thing that is wrong decides the ending (``protocol_error`` unless it says
otherwise) and the guest is killed; what it sends after that is not even looked at.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from protocol.messages import (
    Boot,
    BootTimings,
    Code,
    Console,
    ConsoleClosed,
    DuringRequest,
    FileAnswer,
    FileCall,
    GuestHello,
    GuestMessage,
    Invoke,
    LimitReached,
    Load,
    Loaded,
    LoadTimings,
    Message,
    Ready,
    Refused,
    Result,
    Snapshot,
    Starting,
    StdinData,
    StdinRequest,
    Stream,
    Trapped,
)
from protocol.schema import to_wire

from .cachesink import CacheSink
from .chunked import ChunkedPayload
from .connection import GuestConnection
from .endings import Ending, Limit
from .errors import GuestEnded, GuestTrapped, IllegalAction, InvokeRefused
from .exits import ending_of_reply, ending_of_trap
from .filebroker import FileBroker
from .framebudget import FrameBudget
from .gueststate import RUNNING_CODE_STATES, TRANSITIONS, WORKING_STATES, GuestState, Stage
from .output import OutputGate
from .pipeline import FILLS_CACHE, FINAL_REPLIES, IDLE_STATE, WORKING_STATE, Pipeline, fail
from .stdinserver import StdinServer
from .stdio import ConsoleSink


class Conversation:
    """What the host knows of a guest from what it said, and the rules for what it may say.

    ``state`` follows the request the guest works on (``host.gueststate``); ``timings``
    (milliseconds), ``code_cache``, ``code_size``, ``module_start`` and ``fuel_used`` fill in
    from its replies.
    """

    def __init__(self, console: ConsoleSink) -> None:
        self.state = GuestState.SPAWNED
        self.timings: dict[str, float] = {}
        self.code_cache: str | None = None  # what the code cache did (``submit_load``)
        self.code_size: int | None = None  # the module's, from Loaded (``protocol.limits``)
        self.module_start: int | None = None  # its start function's index, from Loaded
        self.fuel_used: int | None = None  # fuel spent so far, as of the last Result
        self._console = console
        self._stage = Stage.NOTHING
        self._decided: Ending | None = None  # the first cause; the ending once reaped
        # The parts; ``Guest.begin`` (and ``submit_load``/``submit_boot``) set them up.
        self._connection: GuestConnection | None = None
        self._pipeline: Pipeline | None = None
        self._output: OutputGate | None = None
        self._frames: FrameBudget | None = None
        self._stdin_server: StdinServer | None = None
        self._files: FileBroker | None = None  # with preopened directories, from Boot on
        self._cache: CacheSink | None = None
        # What a start function left, when Boot asked for it (``submit_boot``).
        self._snapshot: ChunkedPayload | None = None
        self._told_closed: set[int] = set()  # streams the guest knows nobody reads

    # -- what only the Guest can do -------------------------------------------------------------

    def end(self, ending: Ending) -> None:
        raise NotImplementedError

    def _on_hello(self, message: GuestHello) -> str | None:
        raise NotImplementedError

    def _exit_expected(self, ending: Ending) -> None:
        raise NotImplementedError

    def _load_answered(self) -> None:
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------------

    def _transition(self, new: GuestState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise IllegalAction(f"a guest cannot go from {self.state.value} to {new.value}")
        self.state = new

    def _decide(self, ending: Ending) -> None:
        """Record the first cause; later ones do not change how the guest ended. Nothing
        the guest sends after this matters, so its frames are no longer even read."""
        if self._decided is None:
            self._decided = ending
            if self._connection is not None:
                self._connection.stop_reading()

    def _begin_next(self) -> None:
        """The guest moves on to the next pipelined request, if there is one."""
        assert self._pipeline is not None
        following = self._pipeline.current
        if following is not None:
            self._transition(WORKING_STATE[following.kind])

    def _still_wanted(self, request_id: int) -> bool:
        current = self._pipeline.current if self._pipeline is not None else None
        return self._decided is None and current is not None and current.id == request_id

    # -- frames from the guest (ConnectionListener) ---------------------------------------------

    def connection_broken(self, reason: str) -> None:
        self.end(Ending.protocol_error(reason))

    def message_received(self, message: GuestMessage) -> None:
        if self._decided is not None or self.state is GuestState.ENDED:
            return  # the ending is decided; nothing it says now matters
        problem: str | Ending | None
        if isinstance(message, DuringRequest):
            assert self._frames is not None
            problem = self._frames.take()
            if problem is not None:
                self.end(Ending.protocol_error(problem))
                return
        if isinstance(message, Console):
            problem = self._in_request(message, running_code=True)
            if problem is None:
                assert self._output is not None
                problem = self._output.write(message)
                self._tell_closed_streams(message.id)
        elif isinstance(message, Code):
            problem = self._in_request(message) or self._take_code(message)
        elif isinstance(message, Starting):
            problem = self._in_request(message) or self._on_starting()
        elif isinstance(message, Snapshot):
            problem = self._in_request(message) or self._take_snapshot(message)
        elif isinstance(message, StdinRequest):
            problem = self._in_request(message, running_code=True)
            if problem is None:
                assert self._stdin_server is not None
                problem = self._stdin_server.request(message)
        elif isinstance(message, FileCall):
            problem = self._in_request(message, running_code=True)
            if problem is None:
                problem = (
                    self._files.request(message)
                    if self._files is not None
                    else "a FileCall but the guest was given no directory"
                )
        else:
            problem = self._on_final_reply(message)
        if isinstance(problem, str):
            problem = Ending.protocol_error(problem)
        if problem is not None:
            self.end(problem)

    def _in_request(self, message: Message, running_code: bool = False) -> str | None:
        """None if the guest is working on a request and ``message`` names it; else what is
        wrong. ``running_code``: the message is one only Wasm code can cause (console,
        stdin), so loading is no excuse for it."""
        working = RUNNING_CODE_STATES if running_code else WORKING_STATES
        if self.state not in working:
            return f"{message.TYPE} while {self.state.value}"
        if running_code and self._stage < Stage.CODE_STARTED:
            return f"{message.TYPE} before the module's code started (Starting)"
        assert self._pipeline is not None and self._pipeline.current is not None
        current = self._pipeline.current.id
        if message.id != current:
            return f"{message.TYPE} for request {message.id}, not {current}"
        return None

    def _take_code(self, message: Code) -> str | None:
        assert self._pipeline is not None and self._pipeline.current is not None
        if self._stage >= Stage.CODE_STARTED:
            return "a Code frame after the module's code started running (Starting)"
        if self._cache is None or self._pipeline.current.kind not in FILLS_CACHE:
            return "a Code frame but the host keeps no code cache for this request"
        return self._cache.take(message)

    def _take_snapshot(self, message: Snapshot) -> str | None:
        assert self._pipeline is not None and self._pipeline.current is not None
        if self._snapshot is None or self._pipeline.current.kind is not Boot:
            return "a Snapshot frame, but no Boot asked for one"
        if self._stage < Stage.CODE_STARTED:
            return "a Snapshot frame before the module's code started (Starting)"
        return self._snapshot.take(message.data)

    def _on_starting(self) -> str | None:
        assert self._pipeline is not None and self._pipeline.current is not None
        if self._pipeline.current.kind is not Boot or self._stage >= Stage.CODE_STARTED:
            return f"Starting is not part of {self._pipeline.current.kind.TYPE}"
        self._stage = Stage.CODE_STARTED
        return None

    def _tell_closed_streams(self, request_id: int) -> None:
        """Tell the guest once about each stream nobody reads any more (a console sink may
        say so with ``closed_streams``, as ``StdioConsole`` does): its next write to it
        fails with ``EPIPE`` rather than vanish."""
        closed: frozenset[int] = getattr(self._console, "closed_streams", frozenset())
        assert self._connection is not None
        for stream in sorted(closed - self._told_closed):
            self._told_closed.add(stream)
            self._connection.send(ConsoleClosed(id=request_id, stream=Stream(stream)))

    def _answer(self, message: StdinData | FileAnswer) -> None:
        """Send the answer to a StdinRequest or a FileCall (``StdinServer``, ``FileBroker``)."""
        assert self._frames is not None and self._connection is not None
        # Answered frames are refunded: a guest's calls are served one at a time, so they
        # cost the host at most one worker's time at once; the frame budget bounds the rest.
        self._frames.refund()
        self._connection.send(message)

    # -- final replies --------------------------------------------------------------------------

    def _on_final_reply(self, message: GuestMessage) -> str | None:
        """Settle the request a final reply answers; what is wrong with it, if anything."""
        assert self._pipeline is not None and self._stdin_server is not None
        request = self._pipeline.current
        if request is None:
            return f"{message.TYPE} while no request is running"
        if not isinstance(message, FINAL_REPLIES[request.kind]):
            return f"{message.TYPE} is not a reply to {request.kind.TYPE}"
        if isinstance(message, GuestHello):
            return self._on_hello(message)
        problem = self._in_request(message) or self._reply_problem(message)
        if problem:
            return problem
        now = time.perf_counter()
        if request.kind is Invoke:
            # From when the host saw the guest free to start it (the guest reports the rest).
            elapsed = round((now - request.started) * 1000, 3)
            self.timings["run_ms"] = round(self.timings.get("run_ms", 0.0) + elapsed, 3)
        self._pipeline.pop(now)
        if request.kind is Load:
            self._load_answered()
        finished = ending_of_reply(message, request.kind)
        if finished is not None:
            self._exit_expected(finished)
            fail(request.future, GuestEnded(finished))
            return None
        self._transition(IDLE_STATE[request.kind])
        self._begin_next()
        self._settle(request.future, request.kind, message)
        return None

    def _reply_problem(self, message: GuestMessage) -> str | None:
        """What is wrong with a final reply to the request the guest works on, if anything."""
        assert self._stdin_server is not None
        if self._stdin_server.outstanding:
            return f"{message.TYPE} while its StdinRequest was unanswered"
        if self._files is not None and self._files.outstanding and not _out_of_memory(message):
            # (Out of memory, a guest sends its reply at once: there may be none left to
            # take the answers to the writes it sent ahead with.)
            return f"{message.TYPE} while its FileCall was unanswered"
        if isinstance(message, Ready) and self._stage < Stage.CODE_STARTED:
            return "Ready without Starting before it"
        if isinstance(message, Ready) and self._snapshot is not None and self._snapshot.empty:
            return "Ready without the snapshot its Boot asked for"
        if isinstance(message, Loaded | Ready) and self._cache is not None:
            return self._cache.unasked(message.cache)
        return None

    def _settle(self, future: asyncio.Future[Any], kind: type[Message], reply: Message) -> None:
        """Resolve a request's future from its reply (one that lets the guest go on)."""
        if isinstance(reply, Loaded | Ready):
            self._note_cache(kind is Boot, reply.cache)
            if isinstance(reply, Loaded):
                self.code_size = reply.code_size
                self.module_start = reply.start
            else:
                self._stage = Stage.BOOTED
            self.timings.update(timings_dict(reply.timings))
            future.set_result(reply.timings)
        elif isinstance(reply, Result):
            if reply.fuel is not None:
                self.fuel_used = reply.fuel
            future.set_result(list(reply.results))
        elif isinstance(reply, Refused):
            fail(future, InvokeRefused(reply.message, reply.reason))
        elif isinstance(reply, Trapped):
            fail(future, GuestTrapped(ending_of_trap(reply)))

    def _note_cache(self, metered: bool, status: str) -> None:
        """Note what the code cache did for a Load or Boot; keep the entry the guest sent."""
        if self._cache is not None:
            written = self._cache.keep(metered)
            if written is not None:
                status += "; " + written
        if not metered:
            self.code_cache = status
        elif status != "off":
            self.code_cache = f"{self.code_cache}; metered: {status}"


def timings_dict(timings: LoadTimings | BootTimings) -> dict[str, float]:
    """A timings record as a dict of its fields."""
    fields: dict[str, float] = to_wire(timings)
    return fields


def _out_of_memory(message: GuestMessage) -> bool:
    return isinstance(message, LimitReached) and message.resource is Limit.MEMORY

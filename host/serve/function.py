"""``Function``: a module and its configuration, invoked over and over.

::

    Host.function(name, module, mode=..., **limits) ──▶ Function
    fn.invoke(body, headers, query, method) ──▶ Gate: limit + queue, else 429
        command: template ── fork ──▶ fresh guest: CGI environ and argv in Invoke(_start),
                 the body on stdin, stdout buffered (max_output) ──▶ cgi.parse_output
                 ──▶ stop and reap the guest                       (no state survives)
        export:  Pool ──▶ a warm guest: Invoke(export, numbers) ──▶ JSON numbers
    ──▶ Response(status, headers, body, report)

A template that cannot be built (a module that does not load, an ``init`` that traps) is not
built again for every request: the function backs off (``BuildBackoff``), answering at once
with the failure and ``Retry-After`` until the next try is due, the pause doubling with each
failure in a row (``BUILD_RETRY_FIRST`` up to ``BUILD_RETRY_MAX`` seconds).

Status rules: a command that exits 0 with a well-formed response gives the status it wrote
(200 by default); malformed output is a 502; a trap, a limit, a non-zero exit or any other
ending is a 500, a wall-clock limit a 504, each with its ending in ``Kindling-Ending`` and
nothing of what the program wrote. A module that cannot be loaded is a 500 too. Export mode:
a body that is not a JSON array of numbers, or numbers that do not fit, are a 400.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from typing import TypeVar

from protocol.messages import MAX_INVOKE_STDIN

from ..config import GuestConfig
from ..endings import Ending, EndingKind, Limit
from ..errors import GuestEnded, GuestStartError, GuestTrapped, InvokeRefused
from ..fleet import Fleet
from ..guest import Guest
from ..stdio import BytesStdin, CapturedConsole, NoStdin
from ..watchdog import own_memory
from .cgi import (
    MalformedOutput,
    Request,
    arguments,
    environment,
    parse_output,
    request_headers,
)
from .gate import Gate, Throttled
from .numbers import BadNumbers, format_numbers, parse_numbers
from .pool import Pool
from .report import Report, Response
from .spec import FunctionSpec, Mode

_Got = TypeVar("_Got", Guest, tuple[Guest, bool])
ENDING_HEADER = "Kindling-Ending"
RECENT = 1024
"""How many of its last durations a function keeps, for the percentiles ``kindling top``
shows."""
MEMORY_SAMPLE_SECONDS = 1.0
"""How old a memory figure in a report may be: reading a guest's (``smaps_rollup``, a walk of
its page tables) costs 0.1-0.5 ms of the host's CPU, as much as serving a warm request and a
third of a command-mode request. A pool guest's is read at most this often; in command mode,
one guest's of a function in this time, and the requests in between report it."""
BUILD_RETRY_FIRST = 1.0
"""Seconds a function waits before it tries again to build a template that failed once."""
BUILD_RETRY_MAX = 60.0
"""The longest wait between tries; the wait doubles from ``BUILD_RETRY_FIRST`` up to it."""
REQUEST_ID_HEADER = "Kindling-Request-Id"
_ids = itertools.count(1)
_prefix = f"{os.getpid():x}-{int(time.time()):x}"


def new_request_id() -> str:
    return f"{_prefix}-{next(_ids):x}"


class BuildBackoff:
    """Failed builds of a function's template in a row, and when the next may start: a
    module that cannot start costs a spawn, a load and often a throwaway guest, and a
    request rate of them must not turn into a rate of builds."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0  # time.monotonic()
        self.response: Response | None = None  # the last failure's, answered meanwhile
        self.ending = ""

    def waiting(self) -> float:
        """Seconds until the next build may start (0: now)."""
        return max(self.retry_at - time.monotonic(), 0.0) if self.failures else 0.0

    def failed(self, response: Response, ending: str) -> None:
        """A build failed with ``response``: wait twice as long as last time."""
        pause = min(BUILD_RETRY_FIRST * 2**self.failures, BUILD_RETRY_MAX)
        self.failures += 1
        self.retry_at = time.monotonic() + pause
        self.response, self.ending = response, ending

    def succeeded(self) -> None:
        self.failures = 0
        self.response = None


class Function:
    """One deployed function. Made by ``Host.function`` (or the gateway, from a config)."""

    def __init__(self, fleet: Fleet, spec: FunctionSpec, module: bytes) -> None:
        self._fleet = fleet
        self.spec = spec
        self.module = module
        self.name = spec.name
        self.mode = spec.mode
        self.route = spec.path
        self.config: GuestConfig = spec.guest_config()
        self.gate = Gate(spec.name, spec.limit, spec.queue)
        self.invocations = 0
        self.endings: dict[str, int] = {}
        self.recent: deque[float] = deque(maxlen=RECENT)  # the last durations, ms
        self.memory: int | None = None  # the last guest's own memory, bytes
        self._command_guests: set[Guest] = set()
        self.paused: set[int] = set()  # pids the control API paused: the pool skips them
        self._pool: Pool | None = None
        if spec.mode is Mode.EXPORT:
            # Pool guests live across requests: the wall-clock limit is per request (here),
            # not per guest (a forked guest's deadline counts from its fork).
            pooled = self.config.model_copy(update={"timeout": None})
            self._pool = Pool(fleet, module, pooled, spec.init, spec.pool_spec, self.paused)
        self._template_config = self._pool._config if self._pool else self.config
        # Made once: it hashes the module (every request asks for the template).
        self._template_key = fleet.key(module, self._template_config, spec.init)
        self._closed = False
        self._memory: dict[int, tuple[float, int | None]] = {}  # pid -> (when, bytes)
        self._command_memory: tuple[float, int] | None = None  # (when, bytes): the last read
        self.backoff = BuildBackoff()

    def __repr__(self) -> str:
        return f"<Function {self.name} {self.mode.value} {self.route}>"

    # -- what it has -----------------------------------------------------------------------

    def guests(self) -> list[Guest]:
        """Its live guests: the pool's, or the commands running now."""
        if self._pool is not None:
            return self._pool.guests()
        return list(self._command_guests)

    @property
    def warm(self) -> bool:
        """Its template is ready to fork."""
        return self._fleet.has_template(
            self.module, self._template_config, self.spec.init, self._template_key
        )

    async def start(self) -> None:
        """Build the template now (and fill the pool to its ``min``), so that the first
        request is warm. ``GuestEnded`` if the module cannot be loaded or started."""
        await self._fleet.template(
            self.module, self._template_config, self.spec.init, self._template_key
        )
        if self._pool is not None:
            self._pool.start()

    async def close(self) -> None:
        """Stop its guests (requests still running end ``stopped``)."""
        self._closed = True
        if self._pool is not None:
            await self._pool.close()
        for guest in list(self._command_guests):
            guest.end(Ending.stopped("the function was closed"))

    def percentile(self, fraction: float) -> float | None:
        """A percentile of its last ``RECENT`` durations, ms (None before any)."""
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    # -- invoking --------------------------------------------------------------------------

    async def invoke(
        self,
        body: bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        query: str = "",
        method: str = "POST",
        *,
        path: str | None = None,
        request_id: str | None = None,
        server: tuple[str, int] = ("localhost", 80),
        remote_addr: str = "127.0.0.1",
    ) -> Response:
        """Serve one request; the response carries its ``Report``. Never raises for what a
        guest does: every ending is a status (see the module docstring); a full queue is 429."""
        started = time.perf_counter()
        report = Report(request_id or new_request_id(), self.name, self.mode.value)
        try:
            async with self.gate.slot():
                if self._closed:
                    response = Response(503, [("Content-Type", "text/plain")], b"closed\n")
                    report.ending = "stopped(function closed)"
                elif self.mode is Mode.COMMAND:
                    request = Request(
                        method=method,
                        path=path if path is not None else self.route,
                        query=query,
                        headers=request_headers(headers),
                        body=body,
                        route=self.route,
                        server_name=server[0],
                        server_port=server[1],
                        remote_addr=remote_addr,
                    )
                    response = await self._command(request, report)
                else:
                    response = await self._export(body, report)
        except Throttled as throttled:
            report.ending = "throttled"
            response = Response(
                429,
                [("Content-Type", "text/plain"), ("Retry-After", str(throttled.retry_after))],
                f"{throttled}\n".encode(),
            )
        report.status = response.status
        report.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        response.headers.append((REQUEST_ID_HEADER, report.request_id))
        response.report = report
        self.invocations += 1
        self.endings[report.ending] = self.endings.get(report.ending, 0) + 1
        self.recent.append(report.duration_ms)
        if report.memory is not None:
            self.memory = report.memory
        return response

    async def _template(self, report: Report) -> Response | None:
        """Make sure the template is ready (cold if it had to be built); an error response
        if it cannot be -- at once, without a build, while the last failure's backoff lasts
        (``BuildBackoff``)."""
        if self.warm:
            return None
        report.start = "cold"
        backoff = self.backoff
        waiting = backoff.waiting()
        if waiting > 0 and backoff.response is not None:
            report.ending = backoff.ending
            last = backoff.response
            headers = [h for h in last.headers if h[0] != "Retry-After"]
            headers.append(("Retry-After", str(math.ceil(waiting))))
            note = f"(building it failed {backoff.failures} times in a row; next try in "
            note += f"{waiting:.1f} s)\n"
            return Response(last.status, headers, last.body + note.encode())
        began = time.perf_counter()
        problem: Response | None = None
        try:
            await self._fleet.template(
                self.module, self._template_config, self.spec.init, self._template_key
            )
        except GuestEnded as ended:
            problem = _failed(report, ended.ending, "the module could not be started")
        except (GuestStartError, OSError) as exc:
            problem = _unavailable(report, exc)
        finally:
            report.init_ms = round((time.perf_counter() - began) * 1000, 3)
        if problem is None:
            backoff.succeeded()
        elif not self.warm and not backoff.waiting():
            # Once per build: the requests that waited for the same one fail together (and
            # a build that another request started may have succeeded).
            backoff.failed(problem, report.ending)
        return problem

    async def _command(self, request: Request, report: Report) -> Response:
        problem = await self._template(report)
        if problem is not None:
            return problem
        console = CapturedConsole()
        # A body that fits goes with the Invoke (no StdinRequest round trips); a larger one
        # is read from the guest's stdin source, request by request.
        given = request.body if len(request.body) <= MAX_INVOKE_STDIN else None
        stdin = NoStdin() if given is not None else BytesStdin(request.body)
        got = await _timed_guest(
            report,
            self._fleet.fork(
                self.module, self.config, console, stdin, self.spec.init, self._template_key
            ),
        )
        if isinstance(got, Response):
            return got
        guest = got
        self._command_guests.add(guest)
        try:
            ending = await self._run_command(guest, request, report, given)
        finally:
            self._command_guests.discard(guest)
            await guest.stop()
            self._fleet.release(guest)
        report.ending = ending.text
        if not (ending.kind is EndingKind.EXITED and ending.detail == 0):
            return _failed(report, ending, "the function failed")
        try:
            parsed = parse_output(console.stdout)
        except MalformedOutput as exc:
            return Response(
                502,
                [("Content-Type", "text/plain"), (ENDING_HEADER, report.ending)],
                f"bad gateway: the function's output is not a CGI response: {exc}\n".encode(),
            )
        return Response(parsed.status, parsed.headers, parsed.body)

    async def _run_command(
        self, guest: Guest, request: Request, report: Report, stdin: bytes | None
    ) -> Ending:
        """Run ``_start`` with the request's environment, arguments and (if given) its
        stdin; how it ended."""
        try:
            await guest.submit_invoke(
                "_start",
                argv=arguments(request, self.config.args),
                environ=environment(request, self.config.env),
                stdin=stdin,
            )
            ending = Ending.exited(0)
        except (GuestEnded, GuestTrapped) as exc:
            ending = exc.ending
        except InvokeRefused as exc:
            ending = Ending.load_failure("export", str(exc))
        report.fuel = guest.fuel_used
        report.memory, report.memory_sampled = self._sampled_command_memory(guest)
        return ending

    def _sampled_command_memory(self, guest: Guest) -> tuple[int | None, bool]:
        """This guest's own memory if none of the function's was read in the last
        ``MEMORY_SAMPLE_SECONDS``, else the figure read then; and whether the figure is
        another guest's (the log line says so: ``memory_sampled``)."""
        now = time.monotonic()
        last = self._command_memory
        if last is not None and now - last[0] <= MEMORY_SAMPLE_SECONDS:
            return last[1], True
        figure = None
        if guest.ending is None and guest.pid is not None:
            figure = own_memory(guest.pid)
        if figure is not None:
            self._command_memory = (now, figure)
            return figure, False
        return (last[1], True) if last is not None else (None, False)

    def _memory_of(self, guest: Guest) -> int | None:
        if guest.ending is not None:
            return None
        return _sampled_memory(self._memory, guest.pid)

    async def _export(self, body: bytes, report: Report) -> Response:
        assert self._pool is not None
        try:
            numbers = parse_numbers(body)
        except BadNumbers as exc:
            report.ending = "refused(arguments)"
            return Response(400, [("Content-Type", "text/plain")], f"{exc}\n".encode())
        problem = await self._template(report)
        if problem is not None:
            return problem
        got = await _timed_guest(report, self._pool.take())
        if isinstance(got, Response):
            return got
        guest, forked = got
        if forked:
            report.start = "cold"
        deadline = None
        timeout = self.config.timeout
        if timeout is not None:
            ending = Ending.limit(Limit.WALL, f"still running after its timeout of {timeout:g} s")
            deadline = asyncio.get_running_loop().call_later(timeout, guest.end, ending)
        try:
            results = await guest.invoke(self.spec.export or "", numbers)
        except GuestTrapped as trapped:
            return _failed(report, trapped.ending, "the function trapped")
        except GuestEnded as ended:
            return _failed(report, ended.ending, "the function's guest ended")
        except InvokeRefused as refused:
            report.ending = f"refused({refused.reason})"
            status = 400 if str(refused.reason) == "arguments" else 500
            return Response(status, [("Content-Type", "text/plain")], f"{refused}\n".encode())
        finally:
            if deadline is not None:
                deadline.cancel()
            report.fuel = guest.fuel_used
            report.memory = self._memory_of(guest)
            self._pool.give_back(guest)
        report.ending = "returned"
        return Response(
            200,
            [("Content-Type", "application/json")],
            format_numbers([value.signed() for value in results]),
        )


def _sampled_memory(samples: dict[int, tuple[float, int | None]], pid: int | None) -> int | None:
    """A pool guest's own memory, read at most every ``MEMORY_SAMPLE_SECONDS``."""
    if pid is None:
        return None
    now = time.monotonic()
    sample = samples.get(pid)
    if sample is None or now - sample[0] > MEMORY_SAMPLE_SECONDS:
        if len(samples) > 4096:
            samples.clear()
        sample = samples[pid] = (now, own_memory(pid))
    return sample[1]


async def _timed_guest(report: Report, getting: Awaitable[_Got]) -> _Got | Response:
    """A guest from ``getting`` (a fork, or the pool), its time and pid in the report; the
    error response if there is none."""
    began = time.perf_counter()
    try:
        got = await getting
    except GuestEnded as ended:
        return _failed(report, ended.ending, "the module could not be started")
    except (GuestStartError, OSError) as exc:
        return _unavailable(report, exc)
    report.fork_ms = round((time.perf_counter() - began) * 1000, 3)
    guest = got[0] if isinstance(got, tuple) else got
    report.guest = guest.pid
    return got


def _failed(report: Report, ending: Ending, what: str) -> Response:
    """A 500 (a wall-clock limit: 504) naming the ending; nothing the guest wrote."""
    report.ending = ending.text
    wall = ending.kind is EndingKind.LIMIT and ending.detail == Limit.WALL
    status = 504 if wall else 500
    text = f"{what}: {ending}: {ending.reason()}\n".encode("utf-8", "replace")
    return Response(status, [("Content-Type", "text/plain"), (ENDING_HEADER, ending.text)], text)


def _unavailable(report: Report, exc: BaseException) -> Response:
    report.ending = "unavailable"
    text = f"no guest could be started: {exc}\n".encode("utf-8", "replace")
    return Response(503, [("Content-Type", "text/plain"), ("Retry-After", "1")], text)

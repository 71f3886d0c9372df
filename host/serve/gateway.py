"""The HTTP gateway of ``kindling serve``: routes, one log line per invocation, metrics.

::

    aiohttp ──▶ Gateway.handle ── GET /metrics ──▶ Prometheus text
                   │
                   └─ the longest route that is the path or a prefix of it at a '/'
                      ──▶ Function.invoke ──▶ response; Report ──▶ log line, metrics
                      none: 404

``deploy`` swaps the whole table of functions at once (a reload): a request that has
matched a function finishes on it, the next one sees the new table; ``retire`` waits for a
replaced function's requests, then stops its guests.

aiohttp was chosen by measuring a hello-world handler with ``wrk -t2 -c16 -d10s`` on this
2-core machine: aiohttp 3.14 13,300-17,400 req/s; uvicorn 0.55 + starlette 1.10 5,600 req/s
with h11, 15,700 with httptools (one more compiled dependency). aiohttp also brings the
client the bench's load generator and the CLI need.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import TextIO

from aiohttp import web

from ..supervisor import Host
from .function import Function
from .metrics import CONTENT_TYPE, Metrics
from .report import Report
from .spec import FunctionSpec

MAX_BODY = 16 * 1024 * 1024
"""The largest request body the gateway reads (aiohttp's default is 1 MiB)."""


class Gateway:
    def __init__(self, host: Host, log: TextIO | None = None) -> None:
        self.host = host
        self.log = log if log is not None else sys.stderr
        self.functions: dict[str, Function] = {}
        self._routes: list[tuple[str, Function]] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self.metrics = Metrics(self.all_functions)
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_route("GET", "/metrics", self._metrics)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    def all_functions(self) -> list[Function]:
        return list(self.functions.values())

    # -- deploying -----------------------------------------------------------------------

    def deploy(self, specs: list[tuple[FunctionSpec, bytes]]) -> None:
        """Serve exactly these functions from now on. One whose spec and module are
        unchanged keeps its template, pool and counters; the others' predecessors retire
        once their requests are done."""
        old = self.functions
        new: dict[str, Function] = {}
        for spec, module in specs:
            previous = old.get(spec.name)
            if previous is not None and previous.spec == spec and previous.module == module:
                new[spec.name] = previous
            else:
                function = new[spec.name] = self.host.deploy(spec, module)
                self._spawn(self._warm(function))
        self.functions = new
        self._routes = sorted(
            ((f.route, f) for f in new.values()), key=lambda item: len(item[0]), reverse=True
        )
        for name, function in old.items():
            if new.get(name) is not function:
                self._spawn(self.retire(function))

    async def _warm(self, function: Function) -> None:
        """Build the template and fill the pool in the background: the first request is
        still cold if it comes sooner, and if the module cannot start it is the one that
        says why."""
        with contextlib.suppress(Exception):
            await function.start()

    async def retire(self, function: Function) -> None:
        while function.gate.in_flight or function.gate.waiting:
            await asyncio.sleep(0.05)
        await self.host.remove_function(function)

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[call-overload]
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def match(self, path: str) -> Function | None:
        for route, function in self._routes:
            if path == route or route == "/" or path.startswith(route + "/"):
                return function
        return None

    async def drain(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for every request in flight; whether they all ended."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            busy = [f for f in self.host.functions() if f.gate.in_flight or f.gate.waiting]
            if not busy:
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)

    # -- serving -------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    def record(self, report: Report) -> None:
        """One invocation: its log line and its metrics."""
        self.log.write(report.json_line() + "\n")
        self.metrics.record(report)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        function = self.match(request.path)
        if function is None:
            return web.Response(status=404, text=f"no function serves {request.path}\n")
        body = await request.read()
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) > 1 else 0
        response = await function.invoke(
            body,
            request.headers.items(),
            request.query_string,
            request.method,
            path=request.path,
            server=(request.host.rsplit(":", 1)[0], port),
            remote_addr=request.remote or "",
        )
        if response.report is not None:
            self.record(response.report)
        return web.Response(status=response.status, headers=response.headers, body=response.body)

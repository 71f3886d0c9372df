"""``kindling bench serve``: the HTTP gateway under load, over loopback.

::

    a scratch config: shout.wasm (command) and add.wasm (export), the copies of
              examples/ shipped with the package (MODULES), so that an installed kindling
              runs it as a checkout does
    cold      R times: a new `kindling serve` process, one request to each function at
              once (its template, and for export its pool guest, built for it)
    warm      one `kindling serve`; per target, CONCURRENCY clients for DURATION s:
              this module's own async load generator, then `wrk -t2 -cCONCURRENCY` when
              installed; req/s, p50, p99, errors
    hello     the same for a hello-world handler of the same HTTP library (aiohttp) in a
              process of its own: the gateway's own overhead is the difference

Targets (issue 13), with `wrk -t2 -c16`: command >= 500 req/s and p99 <= 50 ms; export
>= 3,000 req/s and p99 <= 20 ms. The load generator runs in this process, and shares the
machine's cores with the gateway and its guests, as wrk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from .table import render

TARGETS = {"command": (500.0, 50.0), "export": (3000.0, 20.0)}
HELLO_SERVER = """
import sys
from aiohttp import web
async def hello(request):
    await request.read()
    return web.Response(body=b"hello\\n", content_type="text/plain")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


@dataclass
class Load:
    """One target under load: requests per second, latency percentiles (ms), errors."""

    target: str
    tool: str
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0


@dataclass
class Report:
    concurrency: int
    duration: float
    cold_ms: dict[str, float] = field(default_factory=dict)  # median first-request latency
    loads: list[Load] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


MODULES = "modules"
"""The folder of ``host.bench`` that holds the bench's guest modules (package data)."""


def bench_module(name: str) -> Path:
    """The path of the bench's guest module ``name`` (``shout.wasm``, ``add.wasm``): package
    data, a plain file wherever the package is installed."""
    found = importlib.resources.files("host.bench").joinpath(MODULES, name)
    if not found.is_file():
        raise FileNotFoundError(f"the package has no {MODULES}/{name}: is it installed whole?")
    return Path(str(found))


def _config(directory: Path) -> Path:
    path = directory / "bench.toml"
    path.write_text(
        f"""
[[function]]
name = "shout"
module = "{bench_module("shout.wasm")}"
route = "/shout"
concurrency = 64
queue = 4096

[[function]]
name = "add"
module = "{bench_module("add.wasm")}"
route = "/add"
mode = "export"
export = "add"
pool = {{ min = 4, max = 16, idle = 60 }}
queue = 4096
"""
    )
    return path


class _Process:
    """A server process of the bench: started, waited for, stopped and reaped."""

    def __init__(self, command: list[str], port: int, log: Path | None = None) -> None:
        self.port = port
        self._log = log.open("wb") if log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log)

    async def ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited with status {self.process.returncode}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"http://127.0.0.1:{self.port}{path}") as response:
                        await response.read()
                        return
                await asyncio.sleep(0.02)
        raise TimeoutError("the server did not answer")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if hasattr(self._log, "close"):
            self._log.close()


def _gateway(config: Path, port: int, log: Path) -> _Process:
    command = [
        sys.executable,
        "-c",
        "import sys; from host.cli import main; sys.exit(main())",
        "serve",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--log",
        os.devnull,
        "--grace",
        "5",
    ]
    return _Process(command, port, log)


async def _cold(config: Path, directory: Path, repeats: int) -> dict[str, list[float]]:
    """First-request latency of each function in new gateways."""
    found: dict[str, list[float]] = {"command": [], "export": []}
    for _ in range(repeats):
        port = _free_port()
        server = _gateway(config, port, directory / "cold.log")
        try:
            await server.ready("/metrics")
            async with aiohttp.ClientSession() as session:

                async def one(path: str, body: bytes, port: int = port) -> float:
                    began = time.perf_counter()
                    async with session.post(f"http://127.0.0.1:{port}{path}", data=body) as r:
                        await r.read()
                    return (time.perf_counter() - began) * 1000

                command, export = await asyncio.gather(
                    one("/shout", b"cold"), one("/add", b"[1, 2]")
                )
            found["command"].append(command)
            found["export"].append(export)
        finally:
            server.stop()
    return found


async def generate(url: str, body: bytes, concurrency: int, seconds: float) -> Load:
    """``concurrency`` clients POSTing ``body`` to ``url`` for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop = time.monotonic() + seconds

        async def client() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                began = time.perf_counter()
                try:
                    async with session.post(url, data=body) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - began)

        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    return _load("", "kindling", latencies, elapsed, errors)


def _load(target: str, tool: str, latencies: list[float], seconds: float, errors: int) -> Load:
    latencies = sorted(latencies)
    count = len(latencies)
    if not count:
        return Load(target, tool, errors=errors)
    return Load(
        target,
        tool,
        requests=count,
        seconds=round(seconds, 3),
        rps=round(count / seconds, 1),
        p50_ms=round(latencies[count // 2] * 1000, 2),
        p99_ms=round(latencies[min(count - 1, int(count * 0.99))] * 1000, 2),
        errors=errors,
    )


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(url: str, body: bytes, concurrency: int, seconds: float, directory: Path) -> Load | None:
    """``wrk -t2 -cN --latency`` POSTing ``body``; None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    script = directory / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n')
    done = subprocess.run(
        [
            *("wrk", "-t2", f"-c{concurrency}", f"-d{max(int(seconds), 1)}s", "--latency"),
            *("-s", str(script), url),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    text = done.stdout
    load = Load("", "wrk")

    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
        return round(float(match.group(1)) * _WRK_UNITS[match.group(2)], 2) if match else 0.0

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+)s", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    load.rps = float(rps.group(1)) if rps else 0.0
    load.requests = int(total.group(1)) if total else 0
    load.seconds = float(total.group(2)) if total else 0.0
    load.p50_ms, load.p99_ms = latency("50"), latency("99")
    load.errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        load.errors += sum(int(n) for n in socket_errors.groups())
    return load


async def measure(concurrency: int, duration: float, cold_repeats: int) -> Report:
    report = Report(concurrency, duration)
    with tempfile.TemporaryDirectory(prefix="kindling-bench-serve-") as scratch:
        directory = Path(scratch)
        config = _config(directory)
        if cold_repeats:
            cold = await _cold(config, directory, cold_repeats)
            report.cold_ms = {k: round(statistics.median(v), 2) for k, v in cold.items()}
        port = _free_port()
        gateway = _gateway(config, port, directory / "gateway.log")
        hello_port = _free_port()
        hello = _Process([sys.executable, "-c", HELLO_SERVER, str(hello_port)], hello_port)
        try:
            await gateway.ready("/metrics")
            await hello.ready("/")
            targets = [
                ("command", f"http://127.0.0.1:{port}/shout", b"hello"),
                ("export", f"http://127.0.0.1:{port}/add", b"[2, 3]"),
                ("hello", f"http://127.0.0.1:{hello_port}/", b"hello"),
            ]
            for name, url, body in targets:
                await generate(url, body, concurrency, min(duration, 1.0))  # warm up
                load = await generate(url, body, concurrency, duration)
                load.target = name
                report.loads.append(load)
                measured = await asyncio.to_thread(wrk, url, body, concurrency, duration, directory)
                if measured is not None:
                    measured.target = name
                    report.loads.append(measured)
        finally:
            gateway.stop()
            hello.stop()
    for load in report.loads:
        if load.errors:
            report.problems.append(f"{load.target} ({load.tool}): {load.errors} errors")
    return report


def verdicts(report: Report) -> list[str]:
    """Each target against issue 13's, measured with wrk when it ran, else our generator."""
    lines = []
    for target, (rps, p99) in TARGETS.items():
        loads = [load for load in report.loads if load.target == target]
        chosen = next((load for load in loads if load.tool == "wrk"), loads[0] if loads else None)
        if chosen is None:
            continue
        met = chosen.rps >= rps and chosen.p99_ms <= p99
        lines.append(
            f"{target}: {chosen.rps:,.0f} req/s, p99 {chosen.p99_ms:g} ms ({chosen.tool}) "
            f"against >= {rps:,.0f} req/s, p99 <= {p99:g} ms: {'met' if met else 'NOT met'}"
        )
    return lines


def format_report(report: Report) -> str:
    table = [["target", "tool", "req/s", "p50 ms", "p99 ms", "requests", "errors"]]
    for load in report.loads:
        table.append(
            [
                load.target,
                load.tool,
                f"{load.rps:,.0f}",
                f"{load.p50_ms:.2f}",
                f"{load.p99_ms:.2f}",
                str(load.requests),
                str(load.errors),
            ]
        )
    lines = render(table)
    lines.append("")
    lines.append(
        f"warm: {report.concurrency} concurrent clients for {report.duration:g} s each, "
        "over loopback; hello is a hello-world aiohttp handler (the gateway's overhead)"
    )
    for target, ms in report.cold_ms.items():
        lines.append(f"cold {target}: first request of a new gateway, median {ms:.1f} ms")
    lines += verdicts(report)
    lines += [f"!! {problem}" for problem in report.problems]
    return "\n".join(lines) + "\n"


def bench_serve_command(
    concurrency: int, duration: float, cold: int, as_json: bool, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    report = asyncio.run(measure(concurrency, duration, cold))
    if as_json:
        document: dict[str, Any] = {**asdict(report), "ok": report.ok, "verdicts": verdicts(report)}
        out.write(json.dumps(document, indent=1) + "\n")
    else:
        out.write(format_report(report))
    return 0 if report.ok else 1

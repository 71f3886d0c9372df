"""CLI clients of the control API's Unix socket: ``kindling ps`` and ``kindling invoke``."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from ..bench.table import render


async def call(
    socket: Path, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One request to the control API; its status and JSON (None for no body)."""
    connector = aiohttp.UnixConnector(path=str(socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, f"http://kindling{path}", data=body, headers=headers) as reply,
    ):
        text = await reply.read()
        return reply.status, json.loads(text) if text else None


def _run(socket: Path, method: str, path: str, **kwargs: Any) -> tuple[int, Any] | None:
    try:
        return asyncio.run(call(socket, method, path, **kwargs))
    except (aiohttp.ClientError, OSError) as exc:
        sys.stderr.write(f"kindling: cannot reach the control API at {socket}: {exc}\n")
        return None


def ps_command(socket: Path, as_json: bool) -> int:
    functions = _run(socket, "GET", "/functions")
    guests = _run(socket, "GET", "/guests")
    if functions is None or guests is None:
        return 1
    if as_json:
        sys.stdout.write(json.dumps({"functions": functions[1], "guests": guests[1]}) + "\n")
        return 0
    table = [["function", "mode", "route", "invocations", "in flight", "queued", "guests"]]
    for f in functions[1]:
        counts = [str(f[key]) for key in ("invocations", "in_flight", "queued", "guests")]
        table.append([f["name"], f["mode"], f["route"], *counts])
    lines = render(table)
    lines += [
        "",
        *render(
            [["guest", "function", "state"]]
            + [[str(g["id"]), g["function"], g["state"]] for g in guests[1]]
        ),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _body(data: str | None) -> bytes:
    if data is None:
        return b""
    if data == "-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        return Path(data[1:]).read_bytes()
    return data.encode()


def invoke_command(
    socket: Path, name: str, data: str | None, headers: tuple[str, ...], query: str
) -> int:
    pairs: dict[str, str] = {}
    for header in headers:
        key, colon, value = header.partition(":")
        if not colon or not key.strip():
            sys.stderr.write(f"kindling invoke: --header wants K:V, got {header!r}\n")
            return 2
        pairs[key.strip()] = value.strip()
    path = f"/functions/{name}/invoke" + (f"?{query}" if query else "")
    try:
        body = _body(data)
    except OSError as exc:
        sys.stderr.write(f"kindling invoke: cannot read {data}: {exc.strerror}\n")
        return 2
    answer = _run(socket, "POST", path, body=body, headers=pairs)
    if answer is None:
        return 1
    status, result = answer
    if status != 200:
        sys.stderr.write(f"kindling invoke: {result.get('error', status)}\n")
        return 1
    sys.stdout.buffer.write(base64.b64decode(result["body_base64"]))
    sys.stdout.flush()
    sys.stderr.write(json.dumps({"status": result["status"], **result["report"]}) + "\n")
    return 0 if 200 <= result["status"] < 300 else 1


def top_table(functions: list[dict[str, Any]], previous: dict[str, int], seconds: float) -> Any:
    """One frame of ``kindling top``: a rich table, a row per function; rates from the
    invocation counts of the frame before."""
    from rich.table import Table

    table = Table(title="kindling top", expand=True)
    for heading in ("function", "mode", "req/s", "p50 ms", "p99 ms", "in flight", "queued"):
        table.add_column(heading, justify="left" if heading in ("function", "mode") else "right")
    for heading in ("429s", "guests", "memory"):
        table.add_column(heading, justify="right")
    for f in functions:
        done = f["invocations"] - previous.get(f["name"], f["invocations"])
        memory = f"{f['memory'] / 2**20:.1f} MiB" if f.get("memory") else "-"
        table.add_row(
            f["name"],
            f["mode"],
            f"{done / seconds:,.0f}" if seconds > 0 else "-",
            _ms(f.get("p50_ms")),
            _ms(f.get("p99_ms")),
            str(f["in_flight"]),
            str(f["queued"]),
            str(f["throttled"]),
            str(f["guests"]),
            memory,
        )
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def top_command(socket: Path, interval: float, frames: int | None) -> int:
    """Refresh a table of the functions every ``interval`` seconds (``frames`` times, or
    until Ctrl-C)."""
    from rich.console import Console
    from rich.live import Live

    async def run() -> int:
        previous: dict[str, int] = {}
        last = time.monotonic()
        shown = 0
        console = Console()
        with Live(console=console, auto_refresh=False) as live:
            while frames is None or shown < frames:
                try:
                    _, functions = await call(socket, "GET", "/functions")
                except (aiohttp.ClientError, OSError) as exc:
                    console.print(f"kindling top: cannot reach {socket}: {exc}")
                    return 1
                now = time.monotonic()
                live.update(top_table(functions, previous, now - last), refresh=True)
                previous = {f["name"]: f["invocations"] for f in functions}
                last = now
                shown += 1
                if frames is None or shown < frames:
                    await asyncio.sleep(interval)
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0

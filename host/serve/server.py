"""``kindling serve CONFIG``: the gateway's process, its signals and its life.

::

    load CONFIG (exit 2 naming the key if bad) ──▶ Host ──▶ Gateway.deploy ──▶ listen
    SIGHUP          ──▶ load CONFIG again: good, deploy it (in flight finish on the old
                        version, new requests go to the new); bad, log why and keep serving
    SIGTERM, SIGINT ──▶ stop listening, drain in-flight requests for up to --grace seconds,
                        then close the host: every guest and template stopped and reaped
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import TextIO

from aiohttp import web

from ..config import ConfigError
from ..supervisor import Host
from .gateway import Gateway
from .spec import FunctionSpec, load_serve_config

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_GRACE = 10.0


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6); ``ValueError`` naming the text."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen wants HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def read_functions(path: Path) -> list[tuple[FunctionSpec, bytes]]:
    """The config's functions with their modules; ``ConfigError`` naming the key."""
    config = load_serve_config(path)
    return [(spec, spec.module_bytes(config.base)) for spec in config.functions]


async def serve(
    config_path: Path,
    functions: list[tuple[FunctionSpec, bytes]],
    listen: tuple[str, int],
    log: TextIO,
    grace: float = DEFAULT_GRACE,
    api_socket: Path | None = None,
) -> int:
    """Serve ``functions`` (read from ``config_path``, which SIGHUP reads again) until
    SIGTERM or SIGINT; the exit status (0)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    async with Host() as host:
        gateway = Gateway(host, log)
        gateway.deploy(functions)
        runner = web.AppRunner(gateway.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, listen[0], listen[1], reuse_address=True)
        await site.start()
        control = None
        if api_socket is not None:
            from .control import start_control

            _, control = await start_control(gateway, api_socket)
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: _reload(gateway, config_path, log))
        bound = _bound_address(runner, listen)
        _note(log, "listening", address=f"{bound[0]}:{bound[1]}", functions=list(gateway.functions))
        try:
            await stop.wait()
        finally:
            # A second SIGTERM while draining changes nothing (the handlers stay).
            _note(log, "draining", grace=grace)
            await site.stop()  # no new connections
            drained = await gateway.drain(grace)
            await runner.cleanup()
            if control is not None:
                await control.cleanup()
                with contextlib.suppress(OSError):
                    assert api_socket is not None
                    api_socket.unlink()
            await gateway.close()
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(number)
    _note(log, "stopped", drained=drained)
    return 0


def _reload(gateway: Gateway, path: Path, log: TextIO) -> None:
    try:
        functions = read_functions(path)
    except ConfigError as exc:
        _note(log, "reload failed", error=str(exc))
        return
    gateway.deploy(functions)
    _note(log, "reloaded", functions=list(gateway.functions))


def _bound_address(runner: web.AppRunner, listen: tuple[str, int]) -> tuple[str, int]:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return str(address[0]), int(address[1])
    return listen


def _note(log: TextIO, event: str, **fields: object) -> None:
    """One JSON line about the server itself (the invocations' lines have a request_id)."""
    log.write(json.dumps({"event": event, **fields}) + "\n")
    with contextlib.suppress(OSError, ValueError):
        log.flush()


def serve_command(
    config: Path,
    listen: str,
    log_path: Path | None,
    grace: float,
    api_socket: Path | None = None,
) -> int:
    """``kindling serve``: 2 for a bad config or option, naming the key."""
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        sys.stderr.write(f"kindling serve: {exc}\n")
        return 2
    try:
        functions = read_functions(config)  # fail before anything starts
    except ConfigError as exc:
        sys.stderr.write(f"kindling serve: {exc}\n")
        return 2
    log: TextIO = sys.stderr if log_path is None else log_path.open("a", buffering=1)
    try:
        return asyncio.run(serve(config, functions, address, log, grace, api_socket))
    except OSError as exc:
        sys.stderr.write(f"kindling serve: cannot listen on {listen}: {exc.strerror}\n")
        return 1
    finally:
        if log is not sys.stderr:
            log.close()

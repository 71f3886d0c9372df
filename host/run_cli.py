"""The body of ``kindling run``, once click has parsed the command line.

::

    host                                                    guest process
    ────                                                    ─────────────
    click parsed ──▶ spawn ───────────────────────────────▶ start, import the engine
    import asyncio; send Hello + Load(module) ────────────▶ decode, validate, compile,
    import pydantic; validate the config  ◀── overlap ──▶   translate functions ahead
    send Boot + Invoke(_start) ───────────────────────────▶ instantiate, run
    relay the console, serve stdin ◀──────────────────────  Console frames ...
    print the reason / results / report; exit status

The order is the point of this module: the host's own start-up (pydantic above all) and the
guest's -- starting Python, importing the engine, loading the module -- happen at the same
time instead of one after the other.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .endings import Ending, EndingKind
from .exitcodes import CliExitCode
from .transport import GuestProcess, Launcher

if TYPE_CHECKING:
    from .api import RunReport


def run_cli(
    *,
    module_bytes: bytes,
    program_name: str,
    config_file: Path | None,
    overrides: dict[str, Any],
    guest_args: list[str] | None,
    invoke: str | None,
    numbers: list[int | float],
    report: bool,
    started: float,
    code_cache: bool = True,
    cache_dir: Path | None = None,
    guest_stdin: bool = True,
) -> int:
    """Run the guest; return ``kindling run``'s exit status (``host.exitcodes``).
    ``cache_dir``: the code cache's directory, if not the default. ``guest_stdin``: the
    guest reads the host's stdin; False (the module came on it): its stdin is empty."""
    if not code_cache:
        cache = None
    elif cache_dir is None:
        cache = _default_cache_directory()
    else:
        from .codecache import CacheDirectoryError, prepare

        try:
            cache = prepare(cache_dir)
        except CacheDirectoryError as exc:  # asked for by name: not silently left out
            sys.stderr.write(f"kindling: cannot use --cache-dir: {exc}\n")
            return CliExitCode.USAGE
    try:
        process = GuestProcess.spawn(Launcher.default())
    except OSError as exc:
        sys.stderr.write(f"kindling: cannot start a guest process: {exc}\n")
        return CliExitCode.HOST_FAILURE

    import asyncio
    import signal

    from .guest import Guest
    from .stdio import HostStdin, NoStdin, StdioConsole

    loop = asyncio.new_event_loop()
    console = StdioConsole(loop)
    guest = Guest(console=console, stdin=HostStdin(loop) if guest_stdin else NoStdin())
    # The program's isatty() tells the truth: a pipe or a file is not a terminal.
    guest.terminals = [fd for fd in (0, 1, 2) if os.isatty(fd) and (fd or guest_stdin)]
    try:
        # Hello and the module go out now; the guest loads it while we validate the config.
        guest.begin(process, loop=loop)
        guest.submit_load(module_bytes, cache)
        # Kindling uses no pydantic plugins; looking for them reads every installed
        # distribution's entry points, which costs more than the rest of validation.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        guest.configure(_build_config(config_file, overrides, guest_args))

        from .api import run_guest

        def interrupt(name: str) -> None:
            guest.end(Ending.stopped(f"interrupted by {name}"))

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, interrupt, sig.name)
        run_report = loop.run_until_complete(
            run_guest(guest, module_bytes, program_name=program_name, invoke=invoke, args=numbers)
        )
    finally:
        if guest.ending is None:  # a usage error (or worse) before the run: end the guest
            guest.end(Ending.stopped("the command line was not valid"))
            loop.run_until_complete(guest.stop())
        console.close()  # writes what is still queued
        loop.close()
        process.close()  # already reaped and closed by the guest; this makes sure
    if run_report.refused is not None:
        # The command line's numbers do not fit the export: a usage error, like a word
        # where a number belongs (only the guest knows the signature).
        raise click.BadParameter(run_report.refused, param_hint="ARGS")
    if run_report.results is not None:
        sys.stdout.write("[" + ", ".join(r.display() for r in run_report.results) + "]\n")
        sys.stdout.flush()
    return finish(run_report.ending, run_report, report, started)


def finish(ending: Ending, run_report: RunReport | None, report: bool, started: float) -> int:
    """Print the reason (for every ending but ``exited``) and, with ``report``, the report
    on stderr; return the exit status. ``started``: ``time.perf_counter()`` at the start."""
    lines = []
    if ending.kind is not EndingKind.EXITED:
        lines.append(f"kindling: {ending.reason()}")
    if ending.backtrace:
        lines.append("wasm backtrace:")
        lines.extend(f"  {line}" for line in ending.backtrace)
    if report:
        if run_report is not None:
            fields = run_report.as_dict()
        else:
            fields = {
                "ending": ending.text,
                "exit_code": ending.exit_code,
                "status": ending.status,
                "reason": ending.reason(),
                "peak_memory": None,
            }
        if ending.backtrace:
            fields["backtrace"] = list(ending.backtrace)
        fields["total_ms"] = round((time.perf_counter() - started) * 1000, 3)
        lines.append(json.dumps(fields, separators=(",", ":")))
    if lines:
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
    return ending.status


def _default_cache_directory() -> str | None:
    from .codecache import CacheDirectoryError, prepare

    try:
        return prepare()
    except CacheDirectoryError as exc:
        sys.stderr.write(f"kindling: not using the code cache: {exc}\n")
        return None


def _build_config(
    config_file: Path | None, overrides: dict[str, Any], guest_args: list[str] | None
) -> Any:
    """The config file's values with the command line's laid over them: a table (``env``)
    entry by entry, anything else whole; ``click.UsageError`` naming the file or the option."""
    from host.config import ConfigError, read_config_file, validate_config

    from .configkeys import spelling

    try:
        values: dict[str, Any] = {}
        if config_file is not None:
            values = read_config_file(config_file)
            validate_config(values, str(config_file))  # its own mistakes, named by its name
        merged = {**values, **overrides}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                merged[key] = {**values[key], **value}
        if guest_args is not None:
            merged["args"] = guest_args
        return validate_config(merged, "command line", spelling)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None

"""``python -m guestproc.benchrun MODULE [--invoke EXPORT] [--fuel N] [ARGS...]``: time one run.

(``python -m guestproc.benchrun --exports MODULE`` prints the module's exported functions
instead, so the host can tell a WASI command from a kernel without decoding it itself.)

The measuring end of ``kindling bench engine`` (``host.bench.engine`` starts one fresh process
per measurement). Loading is done and timed stage by stage but kept out of the run phase::

    MODULE bytes ──decode──▶ validate ──▶ compile (every function, up front) ──▶ instantiate
                                                                                   │
                          run phase (the only time compared with the Python port) ▼
                          _start(ARGS as argv[1:])   or   EXPORT(ARGS as numbers)

Every function is compiled before the clock starts, so lazy compilation never lands in
``run_seconds``. With ``--fuel N`` the code is compiled metered and runs with a budget of N
(``fuel_used`` says how much it spent). The program's stdout and stderr are captured, not printed; the process prints
exactly one JSON line (``BenchRun.to_json``) on its own stdout and exits 0, whatever the
program did: a trap or a non-zero exit is reported in the record (``ending``), so the caller
can tell "slow" from "wrong". A module that does not load is a usage error (status 2, the
reason on stderr).

Once it has read the module, the process is hardened as a guest is
(``confinement.standalone``: namespaces, uid, seccomp, a memory bound of ``BENCH_MEMORY``
of linear memory and a CPU limit), before it decodes a byte: a benchmark program is module
code like any other.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guestproc.engine import (
    EngineError,
    EngineLimits,
    ExternKind,
    Function,
    Memory,
    Trap,
    ValType,
    compile_module,
    decode_module,
    invoke,
    validate_module,
)
from guestproc.values import ArgumentError, convert_arguments
from guestproc.wasi import WasiEnvironment, WasiExit

USAGE = (
    "usage: python -m guestproc.benchrun MODULE [--invoke EXPORT] [--fuel N] [ARGS...]\n"
    "       python -m guestproc.benchrun --exports MODULE"
)


BENCH_MEMORY = 256 * 1024 * 1024
"""The linear memory budget of a measured run (every memory is capped at it)."""

BENCH_CPU_SECONDS = 600
"""CPU seconds one measured run may take."""


def _harden(module_bytes: bytes) -> None:
    from .confinement import standalone

    standalone(BENCH_MEMORY, len(module_bytes), BENCH_CPU_SECONDS)


class BenchRunError(Exception):
    """The module cannot be run as asked (unreadable, invalid, no such export, bad arguments)."""


@dataclass(frozen=True)
class BenchRun:
    """One measured run. Times are seconds (``time.perf_counter``).

    ``output`` is what is compared with ``expected.json``: the program's stdout for a command
    (decoded as UTF-8, undecodable bytes escaped), or for an export call its results printed
    as ``kindling run --invoke`` prints them (``[75025]`` + newline, integers signed).
    ``ending`` is ``"exited(N)"`` for a command, ``"returned"`` for an export call, or
    ``"trapped: REASON"``.
    """

    module: str
    export: str | None
    args: list[str]
    decode_seconds: float
    validate_seconds: float
    compile_seconds: float
    instantiate_seconds: float
    run_seconds: float
    output: str
    stderr: str
    ending: str
    results: list[int | float | None] | None
    fuel: int | None = None
    fuel_used: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _signed(valtype: ValType, value: Any) -> int | float | None:
    """A result as people read it: i32/i64 signed, floats as they are, references as null."""
    if valtype is ValType.I32:
        return int(value) - (1 << 32) if value >= 1 << 31 else int(value)
    if valtype is ValType.I64:
        return int(value) - (1 << 64) if value >= 1 << 63 else int(value)
    if isinstance(value, float):
        return value
    return None


def format_results(values: list[int | float | None]) -> str:
    """The results line ``kindling run --invoke`` prints: ``[1, -2, 0.5]`` and a newline."""
    shown = []
    for value in values:
        if value is None:
            shown.append("null")
        elif isinstance(value, float):
            shown.append(repr(value) if math.isfinite(value) else str(value))
        else:
            shown.append(str(value))
    return "[" + ", ".join(shown) + "]\n"


def _parse_number(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise BenchRunError(f"argument {text!r} is not a number") from None


def run_module(
    module_bytes: bytes,
    args: list[str],
    export: str | None = None,
    name: str = "module",
    fuel: int | None = None,
) -> BenchRun:
    """Load ``module_bytes`` with our engine and time one run.

    Without ``export`` the module is a WASI command: ``_start`` runs with argv
    ``[name, *args]``. With ``export`` that function is called with ``args`` as numbers.
    With ``fuel`` the code is metered and may spend that much (running out is an ending).
    Raises ``BenchRunError`` when the module does not load or cannot be run as asked; a trap
    or ``proc_exit`` during the run is recorded in ``ending`` instead.
    """
    stdout = bytearray()
    stderr = bytearray()

    def write_console(stream: int, data: bytes) -> None:
        (stdout if stream == 1 else stderr).extend(data)

    def read_stdin(_size: int) -> bytes:
        return b""  # benchmarks read no input

    stage = "decode"
    try:
        started = time.perf_counter()
        module = decode_module(module_bytes)
        decoded = time.perf_counter()
        stage = "validation"
        validate_module(module)
        validated = time.perf_counter()
        stage = "compile"
        compiled = compile_module(module, fuel=fuel is not None)
        compiled.compile_all()
        compiled_at = time.perf_counter()
        stage = "instantiation"
        wasi = WasiEnvironment(
            [name.encode(), *(arg.encode() for arg in args)],
            [],
            write_console=write_console,
            read_stdin=read_stdin,
        )
        instance = compiled.instantiate(
            wasi.imports(), EngineLimits(memory_pages=BENCH_MEMORY // 65536, fuel=fuel)
        )
        instance.compile_all()
        memory = instance.exports.get("memory")
        if isinstance(memory, Memory):
            wasi.bind(memory, instance.pay_bytes)
    except (EngineError, WasiExit) as exc:
        raise BenchRunError(f"{name}: {stage} failed: {exc}") from exc
    func = instance.exports.get(export or "_start")
    if not isinstance(func, Function):
        raise BenchRunError(f"{name}: no exported function {export or '_start'!r}")
    call_args: list[Any] = []
    if export is not None:
        try:
            call_args = convert_arguments(func, export, [_parse_number(a) for a in args])
        except ArgumentError as exc:
            raise BenchRunError(f"{name}: {exc}") from exc
    instantiated = time.perf_counter()

    results: list[int | float | None] | None = None
    ending = "returned" if export is not None else "exited(0)"
    begin = time.perf_counter()
    try:
        raw = invoke(func, call_args)
    except WasiExit as exit_:
        ending = f"exited({exit_.code})"
    except Trap as trap:
        ending = f"trapped: {trap}"
    else:
        if export is not None:
            results = [_signed(t, v) for t, v in zip(func.type.results, raw, strict=True)]
    run_seconds = time.perf_counter() - begin

    output = (
        format_results(results)
        if results is not None
        else stdout.decode("utf-8", "backslashreplace")
    )
    return BenchRun(
        module=name,
        export=export,
        args=list(args),
        decode_seconds=decoded - started,
        validate_seconds=validated - decoded,
        compile_seconds=compiled_at - validated,
        instantiate_seconds=instantiated - compiled_at,
        run_seconds=run_seconds,
        output=output,
        stderr=stderr.decode("utf-8", "backslashreplace"),
        ending=ending,
        results=results,
        fuel=fuel,
        fuel_used=instance.fuel.used if fuel is not None else None,
    )


def exported_functions(module_bytes: bytes) -> dict[str, dict[str, list[str]]]:
    """``{export name: {"params": [...], "results": [...]}}`` for every exported function.

    Raises ``BenchRunError`` when the module does not decode.
    """
    try:
        module = decode_module(module_bytes)
        func_types = module.func_types()
    except (EngineError, IndexError) as exc:
        raise BenchRunError(f"the module does not decode: {exc}") from exc
    return {
        export.name: {
            "params": [t.text for t in func_types[export.index].params],
            "results": [t.text for t in func_types[export.index].results],
        }
        for export in module.exports
        if export.kind is ExternKind.FUNC and export.index < len(func_types)
    }


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(USAGE + "\n")
        return 0 if argv else 2
    if argv[0] == "--exports":
        if len(argv) != 2:
            sys.stderr.write(USAGE + "\n")
            return 2
        try:
            module_bytes = Path(argv[1]).read_bytes()
            _harden(module_bytes)
            functions = exported_functions(module_bytes)
        except OSError as exc:
            sys.stderr.write(f"benchrun: cannot read {argv[1]}: {exc.strerror}\n")
            return 2
        except BenchRunError as exc:
            sys.stderr.write(f"benchrun: {argv[1]}: {exc}\n")
            return 2
        sys.stdout.write(json.dumps({"exports": functions}) + "\n")
        return 0
    path, rest = Path(argv[0]), argv[1:]
    export = None
    fuel = None
    while rest[:1] in (["--invoke"], ["--fuel"]):
        if len(rest) < 2 or (rest[0] == "--fuel" and not rest[1].isdigit()):
            sys.stderr.write(USAGE + "\n")
            return 2
        if rest[0] == "--invoke":
            export = rest[1]
        else:
            fuel = int(rest[1])
        rest = rest[2:]
    try:
        module_bytes = path.read_bytes()
    except OSError as exc:
        sys.stderr.write(f"benchrun: cannot read {path}: {exc.strerror}\n")
        return 2
    _harden(module_bytes)
    try:
        run = run_module(module_bytes, rest, export, name=str(path), fuel=fuel)
    except BenchRunError as exc:
        sys.stderr.write(f"benchrun: {exc}\n")
        return 2
    sys.stdout.write(run.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

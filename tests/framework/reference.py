"""Run a module under PyPI ``wasmtime``, the reference the differential tests compare with.

wasmtime is used only here, in tests, as an independent implementation of WebAssembly and
WASI: Kindling's own engine must produce the same stdout and the same ending. Its trap codes
are translated to Kindling's ending names (``TrapCode.kind`` in ``guestproc.engine.errors``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from .expectations import INVOKE_SUCCESS_ENDING, format_results

# wasmtime's trap code -> Kindling's trap kind.
_TRAP_KINDS = {
    wasmtime.TrapCode.UNREACHABLE: "unreachable",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer_divide_by_zero",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer_overflow",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid_conversion",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out_of_bounds_memory",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "undefined_element",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "uninitialized_element",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect_call_type_mismatch",
    wasmtime.TrapCode.STACK_OVERFLOW: "call_stack_exhausted",
}


@dataclass(frozen=True)
class ReferenceOutcome:
    """What a program did under wasmtime: its output and its ending in text form."""

    stdout: bytes
    stderr: bytes
    ending: str  # "exited(3)", "trapped(unreachable)"


def run_reference(
    module: Path,
    args: Sequence[str] = (),
    *,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    memory_limit_bytes: int | None = None,
) -> ReferenceOutcome:
    """Run ``module``'s ``_start`` as a WASI command under wasmtime and report the outcome.

    argv[0] is the module's file name. A trap whose code has no Kindling name raises
    ``ValueError`` rather than being guessed at.
    """
    with tempfile.TemporaryDirectory(prefix="kindling-reference-") as scratch:
        stdin_path = Path(scratch, "stdin")
        stdout_path = Path(scratch, "stdout")
        stderr_path = Path(scratch, "stderr")
        stdin_path.write_bytes(stdin)

        wasi = wasmtime.WasiConfig()
        wasi.argv = [module.name, *args]
        wasi.env = list((env or {}).items())
        wasi.stdin_file = str(stdin_path)
        wasi.stdout_file = str(stdout_path)
        wasi.stderr_file = str(stderr_path)

        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        if memory_limit_bytes is not None:
            store.set_limits(memory_size=memory_limit_bytes)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(module)))
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
            ending = "exited(0)"
        except wasmtime.ExitTrap as exit_trap:
            ending = f"exited({exit_trap.code})"
        except wasmtime.Trap as trap:
            code = trap.trap_code
            if code not in _TRAP_KINDS:
                raise ValueError(f"wasmtime trap with no Kindling name: {code}: {trap}") from trap
            ending = f"trapped({_TRAP_KINDS[code]})"
        # Drop the store before reading, so every WASI file handle is closed.
        del instance, store, linker
        return ReferenceOutcome(stdout_path.read_bytes(), stderr_path.read_bytes(), ending)


def invoke_reference(
    module: Path, export: str, args: Sequence[str], *, memory_limit_bytes: int | None = None
) -> ReferenceOutcome:
    """Call ``export`` of a module without imports with integer ``args`` under wasmtime.

    stdout is the results in the form ``kindling run --invoke`` prints them.
    """
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    if memory_limit_bytes is not None:
        store.set_limits(memory_size=memory_limit_bytes)
    instance = wasmtime.Instance(store, wasmtime.Module.from_file(engine, str(module)), [])
    func = instance.exports(store)[export]
    assert isinstance(func, wasmtime.Func)
    try:
        raw = func(store, *(int(a) for a in args))
    except wasmtime.Trap as trap:
        if trap.trap_code not in _TRAP_KINDS:
            raise ValueError(f"wasmtime trap with no Kindling name: {trap}") from trap
        return ReferenceOutcome(b"", b"", f"trapped({_TRAP_KINDS[trap.trap_code]})")
    results = [] if raw is None else list(raw) if isinstance(raw, list | tuple) else [raw]
    return ReferenceOutcome(format_results(results).encode(), b"", INVOKE_SUCCESS_ENDING)

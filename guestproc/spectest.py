"""Run WebAssembly spec test scripts (``.wast``) against the engine.

::

    .wast bytes ──parse_script──▶ commands ──ScriptRunner──▶ ScriptResult (passed, failed, failures)

This runs on the guest side of Kindling (the scripts hold modules to decode and run, which the
host never does itself): ``kindling spec`` starts ``python -m guestproc.spectest FILE...`` and
reads one JSON object per file from its stdout.

Counting follows the suite's inventory: every ``assert_*`` command is one assertion. A
``module``, ``register`` or plain action that fails is reported as a failure with its line but
is not an assertion; it marks the file as failed all the same.

Trap messages match when the expected text starts with the engine's trap message (the suite
sometimes adds detail, e.g. "uninitialized element 2"), the rule the reference interpreter
uses for its own messages.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .engine import numeric
from .engine.errors import DecodeError, EngineError, LinkError, Trap, TrapCode, ValidationError
from .engine.instance import (
    DEFAULT_LIMITS,
    UNLIMITED_FUEL,
    CompiledModule,
    EngineLimits,
    Instance,
    compile_module,
)
from .engine.module import Module
from .engine.runtime import Function, GlobalCell, Memory, Table, host_function
from .engine.text import (
    ActionCommand,
    AssertExhaustion,
    AssertInvalid,
    AssertMalformed,
    AssertReturn,
    AssertTrap,
    AssertUninstantiable,
    AssertUnlinkable,
    Expected,
    Get,
    Invoke,
    ModuleCommand,
    NanPattern,
    RefPattern,
    Register,
    ScriptModule,
    V128Pattern,
    Value,
    parse_script,
)
from .engine.types import FuncType, GlobalType, Limits, MemoryType, TableType, ValType
from .engine.validator import validate_module

Extern = Function | Table | Memory | GlobalCell

MAX_FAILURES_KEPT = 200  # per file; the counts stay exact


@dataclass(frozen=True, slots=True)
class HostRef:
    """The host reference ``(ref.extern N)`` of a script."""

    number: int


@dataclass(slots=True)
class Failure:
    line: int
    command: str
    message: str


@dataclass(slots=True)
class ScriptResult:
    file: str
    passed: int = 0
    failed: int = 0
    errors: int = 0  # failed module/register/action commands (not assertions)
    failures: list[Failure] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.passed + self.failed

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["total"] = self.total
        return data


def spectest_module() -> dict[str, Extern]:
    """The host module the suite imports as ``spectest``."""

    def ignore(*_args: Any) -> None:
        return None

    exports: dict[str, Extern] = {}
    for name, params in (
        ("print", ()),
        ("print_i32", (ValType.I32,)),
        ("print_i64", (ValType.I64,)),
        ("print_f32", (ValType.F32,)),
        ("print_f64", (ValType.F64,)),
        ("print_i32_f32", (ValType.I32, ValType.F32)),
        ("print_f64_f64", (ValType.F64, ValType.F64)),
    ):
        exports[name] = host_function(FuncType(params, ()), ignore, name)
    exports["global_i32"] = GlobalCell(GlobalType(ValType.I32, False), 666)
    exports["global_i64"] = GlobalCell(GlobalType(ValType.I64, False), 666)
    exports["global_f32"] = GlobalCell(GlobalType(ValType.F32, False), numeric.f32_round(666.6))
    exports["global_f64"] = GlobalCell(GlobalType(ValType.F64, False), 666.6)
    exports["table"] = Table(TableType(ValType.FUNCREF, Limits(10, 20)))
    exports["memory"] = Memory(MemoryType(Limits(1, 2)))
    return exports


def _float_bits(valtype: ValType, value: float) -> int:
    return numeric.f32_to_bits(value) if valtype is ValType.F32 else numeric.f64_to_bits(value)


def _nan_matches(expected: NanPattern, bits: int) -> bool:
    """Whether the float ``bits`` are a NaN of the kind ``expected`` asks for."""
    if expected.type is ValType.F32:
        mask = 0x7FFFFFFF if expected.canonical else 0x7FC00000
        return bits & mask == 0x7FC00000
    mask = 0x7FFFFFFFFFFFFFFF if expected.canonical else 0x7FF8000000000000
    return bits & mask == 0x7FF8000000000000


def _lanes_match(expected: V128Pattern, got: Any) -> bool:
    if not isinstance(got, int):
        return False
    width = expected.bits
    mask = (1 << width) - 1
    for index, lane in enumerate(expected.lanes):
        bits = (got >> (index * width)) & mask
        if isinstance(lane, NanPattern):
            if not _nan_matches(lane, bits):
                return False
        elif bits != lane:
            return False
    return True


def _matches(expected: Expected, got: Any) -> bool:
    if isinstance(expected, NanPattern):
        if not isinstance(got, float) or got == got:
            return False
        return _nan_matches(expected, _float_bits(expected.type, got))
    if isinstance(expected, V128Pattern):
        return _lanes_match(expected, got)
    if isinstance(expected, RefPattern):
        if expected.type is ValType.FUNCREF:
            return isinstance(got, Function)
        return got is not None and not isinstance(got, Function)
    if expected.type is ValType.FUNCREF:
        return got is None if expected.payload is None else isinstance(got, Function)
    if expected.type is ValType.EXTERNREF:
        return got is None if expected.payload is None else got == HostRef(expected.payload)
    if expected.type in (ValType.F32, ValType.F64):
        return isinstance(got, float) and _float_bits(expected.type, got) == expected.payload
    return isinstance(got, int) and got == expected.payload


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value!r} (bits {numeric.f64_to_bits(value):#x})"
    return repr(value)


def _trap_matches(trap: Trap, expected: str) -> bool:
    return expected.startswith(trap.code.value)


class ScriptRunner:
    """Executes one script's commands in order, keeping modules, names and registrations."""

    def __init__(
        self, name: str, limits: EngineLimits = DEFAULT_LIMITS, metered: bool = False
    ) -> None:
        self.result = ScriptResult(name)
        if metered and limits.fuel is None:
            limits = dataclasses.replace(limits, fuel=UNLIMITED_FUEL)
        self.limits = limits
        self.metered = metered
        self.registry: dict[str, dict[str, Extern]] = {"spectest": spectest_module()}
        self.named: dict[str, Instance] = {}
        self.current: Instance | None = None

    # --- bookkeeping ------------------------------------------------------------------------

    def _pass(self) -> None:
        self.result.passed += 1

    def _fail(self, line: int, command: str, message: str, assertion: bool = True) -> None:
        if assertion:
            self.result.failed += 1
        else:
            self.result.errors += 1
        if len(self.result.failures) < MAX_FAILURES_KEPT:
            self.result.failures.append(Failure(line, command, message))

    # --- modules and actions ------------------------------------------------------------------

    def _compile(self, script_module: ScriptModule) -> CompiledModule:
        module: Module = script_module.load()
        validate_module(module)
        return compile_module(module, fuel=self.metered)

    def _instantiate(self, compiled: CompiledModule) -> Instance:
        imports: dict[tuple[str, str], Extern] = {}
        for imp in compiled.module.imports:
            extern = self.registry.get(imp.module, {}).get(imp.name)
            if extern is not None:
                imports[(imp.module, imp.name)] = extern
        return compiled.instantiate(imports, self.limits)

    def _target(self, module_name: str | None) -> Instance:
        if module_name is not None:
            return self.named[module_name]
        if self.current is None:
            raise LookupError("no module has been defined yet")
        return self.current

    @staticmethod
    def _argument(value: Value) -> Any:
        if value.type is ValType.EXTERNREF:
            return None if value.payload is None else HostRef(value.payload)
        if value.type is ValType.FUNCREF:
            return None
        return value.number()

    def _act(self, action: Invoke | Get) -> list[Any]:
        instance = self._target(action.module)
        if isinstance(action, Get):
            extern = instance.exports[action.name]
            if not isinstance(extern, GlobalCell):
                raise LookupError(f"{action.name} is not a global")
            return [extern.value]
        return instance.invoke(action.name, *(self._argument(a) for a in action.args))

    # --- commands -------------------------------------------------------------------------------

    def run(self, source: bytes) -> ScriptResult:
        try:
            commands = parse_script(source)
        except DecodeError as exc:
            self._fail(0, "script", f"the script does not parse: {exc}", assertion=False)
            return self.result
        for command in commands:
            try:
                self._command(command)
            except RecursionError:
                self._fail(
                    command.line,
                    type(command).__name__,
                    "engine recursion overflow outside Wasm code",
                )
            except Exception as exc:  # an engine bug must not stop the file
                self._fail(
                    command.line, type(command).__name__, f"unexpected {type(exc).__name__}: {exc}"
                )
        return self.result

    def _command(self, command: Any) -> None:
        line = command.line
        if isinstance(command, ModuleCommand):
            self.current = None
            try:
                self.current = self._instantiate(self._compile(command.module))
            except EngineError as exc:
                self._fail(line, "module", f"{type(exc).__name__}: {exc}", assertion=False)
                return
            if command.module.name:
                self.named[command.module.name] = self.current
        elif isinstance(command, Register):
            try:
                instance = self._target(command.module)
            except (KeyError, LookupError) as exc:
                self._fail(line, "register", f"nothing to register: {exc}", assertion=False)
                return
            self.registry[command.name] = dict(instance.exports)
        elif isinstance(command, ActionCommand):
            try:
                self._act(command.action)
            except (EngineError, KeyError, LookupError) as exc:
                self._fail(line, "action", f"{type(exc).__name__}: {exc}", assertion=False)
        elif isinstance(command, AssertReturn):
            self._assert_return(command)
        elif isinstance(command, AssertTrap | AssertExhaustion):
            self._assert_trap(command)
        elif isinstance(command, AssertMalformed):
            self._expect_error(
                line, "assert_malformed", command.module, command.message, DecodeError
            )
        elif isinstance(command, AssertInvalid):
            self._expect_error(
                line, "assert_invalid", command.module, command.message, ValidationError
            )
        elif isinstance(command, AssertUnlinkable):
            self._expect_error(
                line, "assert_unlinkable", command.module, command.message, LinkError
            )
        elif isinstance(command, AssertUninstantiable):
            self._expect_error(line, "assert_uninstantiable", command.module, command.message, Trap)

    def _assert_return(self, command: AssertReturn) -> None:
        try:
            got = self._act(command.action)
        except (EngineError, KeyError, LookupError) as exc:
            self._fail(command.line, "assert_return", f"{type(exc).__name__}: {exc}")
            return
        expected = command.expected
        if len(got) == len(expected) and all(
            _matches(e, g) for e, g in zip(expected, got, strict=True)
        ):
            self._pass()
        else:
            shown = ", ".join(_show(g) for g in got)
            self._fail(command.line, "assert_return", f"got [{shown}], expected {list(expected)}")

    def _assert_trap(self, command: AssertTrap | AssertExhaustion) -> None:
        name = "assert_exhaustion" if isinstance(command, AssertExhaustion) else "assert_trap"
        target = command.action if isinstance(command, AssertExhaustion) else command.target
        try:
            if isinstance(target, ScriptModule):
                self._instantiate(self._compile(target))
                got = "the module instantiated"
            else:
                got = f"returned {self._act(target)}"
        except Trap as trap:
            exhausted = trap.code is TrapCode.CALL_STACK_EXHAUSTED
            if _trap_matches(trap, command.message) and (exhausted or name == "assert_trap"):
                self._pass()
                return
            got = f"trapped with {trap}"
        except (EngineError, KeyError, LookupError) as exc:
            got = f"{type(exc).__name__}: {exc}"
        self._fail(command.line, name, f"{got}; expected a trap: {command.message}")

    def _expect_error(
        self,
        line: int,
        name: str,
        script_module: ScriptModule,
        message: str,
        wanted: type[EngineError],
    ) -> None:
        try:
            compiled = self._compile(script_module)
            if wanted in (LinkError, Trap):
                self._instantiate(compiled)
            got = "no error"
        except wanted:
            self._pass()
            return
        except EngineError as exc:
            got = f"{type(exc).__name__}: {exc}"
        self._fail(line, name, f"{got}; expected {wanted.__name__}: {message}")


def run_file(
    path: Path, limits: EngineLimits = DEFAULT_LIMITS, metered: bool = False
) -> ScriptResult:
    """Run one script; ``metered`` compiles every module with fuel metering (no budget)."""
    return ScriptRunner(path.name, limits, metered).run(path.read_bytes())


MAX_SCRIPT_BYTES = 64 * 1024 * 1024
"""The largest script ``kindling spec`` hands a runner (the suite's largest is under 1 MiB)."""

SPEC_MEMORY = 256 * 1024 * 1024
"""The runner's linear memory budget (every memory and every ``memory.grow`` is capped at it,
as a guest's is at its budget). The core suite's largest memory is far smaller."""

SPEC_CPU_SECONDS = 300
"""CPU seconds one script may take (the whole core suite takes about ten)."""

SPEC_LIMITS = dataclasses.replace(DEFAULT_LIMITS, memory_pages=SPEC_MEMORY // 65536)


def main(argv: list[str]) -> int:
    """``python -m guestproc.spectest NAME``: the script on stdin, run hardened as a guest
    (``confinement.standalone``); its result as one JSON line on stdout."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m guestproc.spectest NAME < SCRIPT\n")
        return 2
    source = sys.stdin.buffer.read(MAX_SCRIPT_BYTES + 1)
    if len(source) > MAX_SCRIPT_BYTES:
        sys.stderr.write(f"the script is over {MAX_SCRIPT_BYTES} bytes\n")
        return 2
    # Hardened as a guest before the first untrusted byte is parsed (the script's size
    # stands for its code size in the memory bound).
    from .confinement import standalone

    standalone(SPEC_MEMORY, len(source), SPEC_CPU_SECONDS)
    result = ScriptRunner(argv[0], SPEC_LIMITS, False).run(source)
    sys.stdout.write(json.dumps(result.to_json()) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

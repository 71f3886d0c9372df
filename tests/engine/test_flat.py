"""The flattened lowering (``guestproc.engine.flat``) against the structured one.

Random functions with every kind of control flow -- blocks, loops and ifs with values and
parameters, multi-value blocks, br/br_if/br_table to any label, returns, values held on the
operand stack across blocks, dead code -- are compiled both ways (and run under wasmtime
when it is installed): results must agree, and metered code must count the same fuel.
Which lowering a function gets is checked too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from guestproc.engine import compile_module, decode_module, parse_module, validate_module
from guestproc.engine.compiler import DEEP_NESTING
from guestproc.engine.flat import FlatCompiler
from guestproc.engine.instance import CompiledModule, EngineLimits
from guestproc.engine.split import SplitCompiler
from host.bench.loadshapes import SHAPES

ARGUMENTS = [(0, 0), (1, 2), (5, 17), (7, 59), (2**31, 2**32 - 1), (12345, 678)]


class ProgramMaker:
    """Random valid functions ``(param i32 i32) (result i32)``.

    Local 2 counts loop steps down: every loop head takes one, and every branch back to a
    loop is taken only while steps are left, so every function ends. Locals 3 and 4 are
    scratch. ``labels`` lists the enclosing labels, innermost last, as (kind, arity).
    """

    def __init__(self, rng: random.Random, max_depth: int = 6) -> None:
        self.rng = rng
        self.max_depth = max_depth

    def function(self) -> str:
        labels = [("func", 1)]
        body = f"{self.statements(0, labels)} {self.value(0, labels)}"
        return (
            '(module (func (export "f") (param i32 i32) (result i32) (local i32 i32 i32) '
            f"(local.set 2 (i32.const 40)) {body}))"
        )

    # --- values: each fragment leaves exactly one i32 --------------------------------------

    def value(self, depth: int, labels: list[tuple[str, int]]) -> str:
        rng = self.rng
        if depth >= self.max_depth or rng.random() < 0.3:
            if rng.random() < 0.4:
                return f"(i32.const {rng.randint(-3, 90)})"
            return f"(local.get {rng.choice((0, 1, 3, 4))})"
        choice = rng.random()
        inner = depth + 1
        if choice < 0.25:
            op = rng.choice(("add", "sub", "mul", "xor", "and", "or", "shl", "rotl"))
            return f"(i32.{op} {self.value(inner, labels)} {self.value(inner, labels)})"
        if choice < 0.38:
            scope = [*labels, ("block", 1)]
            return (
                f"(block (result i32) {self.statements(inner, scope)} {self.value(inner, scope)})"
            )
        if choice < 0.5:
            scope = [*labels, ("if", 1)]
            return (
                f"(if (result i32) {self.condition(inner, labels)} "
                f"(then {self.statements(inner, scope)} {self.value(inner, scope)}) "
                f"(else {self.statements(inner, scope)} {self.value(inner, scope)}))"
            )
        if choice < 0.58:
            scope = [*labels, ("loop", 0)]
            return (
                f"(loop (result i32) {self._step()} {self.statements(inner, scope)} "
                f"{self.value(inner, scope)})"
            )
        if choice < 0.65:  # a loop with a parameter, inside a block that supplies it
            outer = [*labels, ("block", 1)]
            scope = [*outer, ("loop", 1)]
            return (
                f"(block (result i32) {self.value(inner, outer)} "
                f"(loop (param i32) (result i32) (local.set 4) {self._step()} "
                f"{self.statements(inner, scope)} {self.value(inner, scope)}))"
            )
        if choice < 0.72:
            scope = [*labels, ("block", 2)]
            return (
                f"(i32.sub (block (result i32 i32) {self.statements(inner, scope)} "
                f"{self.value(inner, scope)} {self.value(inner, scope)}))"
            )
        if choice < 0.8:
            return f"(local.tee {rng.choice((3, 4))} {self.value(inner, labels)})"
        if choice < 0.87:
            return (
                f"(select {self.value(inner, labels)} {self.value(inner, labels)} "
                f"{self.condition(inner, labels)})"
            )
        # a value computed, held on the stack while a block runs, then combined
        return f"(i32.add {self.value(inner, labels)} {self.value(inner, labels)})"

    def condition(self, depth: int, labels: list[tuple[str, int]]) -> str:
        bound = self.rng.randint(0, 60)
        return (
            f"(i32.lt_u (i32.and {self.value(depth, labels)} (i32.const 63)) (i32.const {bound}))"
        )

    @staticmethod
    def _step() -> str:
        return "(local.set 2 (i32.sub (local.get 2) (i32.const 1)))"

    # --- statements: each fragment leaves nothing ----------------------------------------

    def statements(self, depth: int, labels: list[tuple[str, int]]) -> str:
        return " ".join(self.statement(depth, labels) for _ in range(self.rng.randint(0, 3)))

    def statement(self, depth: int, labels: list[tuple[str, int]]) -> str:
        rng = self.rng
        inner = depth + 1
        choice = rng.random() if depth < self.max_depth else rng.random() * 0.3
        if choice < 0.2:
            return f"(local.set {rng.choice((0, 1, 3, 4))} {self.value(inner, labels)})"
        if choice < 0.25:
            return f"(drop {self.value(inner, labels)})"
        if choice < 0.3:
            return self.branch_if(inner, labels)
        if choice < 0.42:
            scope = [*labels, ("if", 0)]
            other = f" (else {self.statements(inner, scope)})" if rng.random() < 0.5 else ""
            return (
                f"(if {self.condition(inner, labels)} (then {self.statements(inner, scope)})"
                f"{other})"
            )
        if choice < 0.52:
            return f"(block {self.statements(inner, [*labels, ('block', 0)])})"
        if choice < 0.6:
            scope = [*labels, ("loop", 0)]
            again = f"(br_if 0 {self._guard(inner, scope)})"
            return f"(loop {self._step()} {self.statements(inner, scope)} {again})"
        if choice < 0.7:
            return self.branch(inner, labels)
        if choice < 0.78:
            return self.branch_table(inner, labels)
        if choice < 0.82:
            return f"(return {self.value(inner, labels)})"
        return self.branch_if(inner, labels)

    def _guard(self, depth: int, labels: list[tuple[str, int]]) -> str:
        """A condition that is false once the loop steps are spent."""
        steps_left = "(i32.gt_s (local.get 2) (i32.const 0))"
        return f"(i32.and {self.condition(depth, labels)} {steps_left})"

    def _values(self, count: int, depth: int, labels: list[tuple[str, int]]) -> str:
        return " ".join(self.value(depth, labels) for _ in range(count))

    def branch(self, depth: int, labels: list[tuple[str, int]]) -> str:
        forward = [i for i, (kind, _) in enumerate(labels) if kind != "loop"]
        position = self.rng.choice(forward)
        arity = labels[position][1]
        return f"(br {len(labels) - 1 - position} {self._values(arity, depth, labels)})"

    def branch_if(self, depth: int, labels: list[tuple[str, int]]) -> str:
        position = self.rng.randrange(len(labels))
        kind, arity = labels[position]
        condition = self._guard(depth, labels) if kind == "loop" else self.condition(depth, labels)
        values = self._values(arity, depth, labels)
        branch = f"(br_if {len(labels) - 1 - position} {values} {condition})"
        return branch + " drop" * arity  # a br_if not taken leaves its values

    def branch_table(self, depth: int, labels: list[tuple[str, int]]) -> str:
        arity = self.rng.choice([arity for kind, arity in labels if kind != "loop"])
        fitting = [
            len(labels) - 1 - i
            for i, (kind, n) in enumerate(labels)
            if kind != "loop" and n == arity
        ]
        targets = " ".join(str(self.rng.choice(fitting)) for _ in range(self.rng.randint(1, 7)))
        index = f"(i32.rem_u {self.value(depth, labels)} (i32.const 9))"
        return f"(br_table {targets} {self._values(arity, depth, labels)} {index})"


def _flattened(compiled: CompiledModule, split: bool = False) -> CompiledModule:
    """``compiled`` with its function 0 replaced by the flattened lowering's code, or with
    ``split`` the split lowering's, in pieces of a few lines (so, many of them)."""
    lowering = (
        SplitCompiler(compiled.info, 0, compiled.fuel, chunk_lines=6, segment_lines=3)
        if split
        else FlatCompiler(compiled.info, 0, compiled.fuel)
    )
    lowering.compile()
    compiled._code[0] = lowering.code()
    return compiled


def _outcomes(
    compiled: CompiledModule, export: str = "f", arguments: Sequence[tuple[int, ...]] = ARGUMENTS
) -> list[Any]:
    """Results and fuel used of a fresh instance per call."""
    limits = EngineLimits(fuel=1 << 40) if compiled.fuel else EngineLimits()
    outcomes = []
    for args in arguments:
        instance = compiled.instantiate({}, limits)
        outcomes.append((instance.invoke(export, *args), instance.fuel_used))
    return outcomes


@pytest.mark.slow
def test_flattened_functions_agree_with_structured_ones_on_random_programs() -> None:
    wasmtime = pytest.importorskip("wasmtime")
    rng = random.Random(20261206)
    maker = ProgramMaker(rng)
    for _ in range(150):
        text = maker.function()
        module = parse_module(text)
        validate_module(module)
        structured = _outcomes(compile_module(module))
        flat = _outcomes(_flattened(compile_module(module)))
        split = _outcomes(_flattened(compile_module(module), split=True))
        assert flat == structured == split, text
        metered = _outcomes(CompiledModule(module, fuel=True))
        plain = _outcomes(CompiledModule(module, fuel=True, fuel_shortcuts=False))
        flat_metered = _outcomes(_flattened(CompiledModule(module, fuel=True)))
        split_metered = _outcomes(_flattened(CompiledModule(module, fuel=True), split=True))
        assert [r for r, _ in metered] == [r for r, _ in structured], text
        assert flat_metered == metered == plain == split_metered, text
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        run = wasmtime.Instance(store, wasmtime.Module(engine, wasmtime.wat2wasm(text)), [])
        function = run.exports(store)["f"]
        signed = [[a - (a >> 31 << 32) for a in args] for args in ARGUMENTS]
        reference = [[function(store, *args) & 0xFFFFFFFF] for args in signed]
        assert [r for r, _ in structured] == reference, text


@pytest.mark.parametrize(("shape", "size"), [("nested_ifs", 85), ("nested_loops", 18)])
def test_shapes_the_structured_lowering_takes_run_the_same_flattened(shape: str, size: int) -> None:
    module = decode_module(SHAPES[shape].build(size))
    arguments = [(x,) for x in (0, 1, 5, 7, size - 1, size, size + 2)]
    for fuel in (False, True):
        structured = _outcomes(CompiledModule(module, fuel=fuel), "run", arguments)
        flat = _outcomes(_flattened(CompiledModule(module, fuel=fuel)), "run", arguments)
        split = _outcomes(_flattened(CompiledModule(module, fuel=fuel), True), "run", arguments)
        assert flat == structured == split
        assert [r for r, _ in flat] == [[SHAPES[shape].expect(size, *a)] for a in arguments]


def test_deep_functions_get_the_flat_lowering_and_others_the_structured_one() -> None:
    def lowered_flat(shape: str, size: int) -> bool:
        return "_b = " in compile_module(decode_module(SHAPES[shape].build(size))).source(0)

    assert not lowered_flat("nested_ifs", DEEP_NESTING)
    assert lowered_flat("nested_ifs", DEEP_NESTING + 1)
    assert not lowered_flat("nested_loops", 18)
    assert lowered_flat("nested_loops", 19)  # CPython nests 20 blocks at most

"""The compiler on hand-assembled functions: control flow shapes and operand ordering.

These run without the decoder, so a failure here points at the compiler itself. Each case
is checked against a result computed independently in Python.
"""

from __future__ import annotations

from typing import Any

import pytest

from guestproc.engine import opcodes as op
from guestproc.engine.errors import Trap, TrapCode
from guestproc.engine.instance import EngineLimits, compile_module
from guestproc.engine.module import Export, Function, Instr, Module
from guestproc.engine.types import ExternKind, FuncType, Limits, MemoryType, ValType

I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64


def assemble(*items: Any) -> list[Instr]:
    """Instructions from ``"name"`` or ``("name", immediate)`` items."""
    out = []
    for item in items:
        name, arg = item if isinstance(item, tuple) else (item, None)
        out.append(Instr(op.BY_NAME[name], arg, 0))
    return out


def run(
    params: tuple[ValType, ...],
    results: tuple[ValType, ...],
    body: list[Instr],
    *args: Any,
    local_types: tuple[ValType, ...] = (),
    types: list[FuncType] | None = None,
    memory: bool = False,
) -> list[Any]:
    module = Module()
    module.types = [FuncType(params, results), *(types or [])]
    module.functions = [Function(0, local_types, body)]
    module.exports = [Export("f", ExternKind.FUNC, 0)]
    if memory:
        module.memories = [MemoryType(Limits(1, None))]
    return compile_module(module).instantiate({}).invoke("f", *args)


def test_loop_exits_to_enclosing_block() -> None:
    # sum 0..n-1 with the exit test at the loop head (clang's usual shape)
    body = assemble(
        "block", "loop",
        ("local.get", 1), ("local.get", 0), "i32.ge_u", ("br_if", 1),
        ("local.get", 2), ("local.get", 1), "i32.add", ("local.set", 2),
        ("local.get", 1), ("i32.const", 1), "i32.add", ("local.set", 1),
        ("br", 0), "end", "end",
        ("local.get", 2), "end",
    )  # fmt: skip
    assert run((I32,), (I32,), body, 100, local_types=(I32, I32)) == [4950]


def test_branch_out_of_two_nested_loops_carries_a_value() -> None:
    # block (result i32) { loop { loop { if i == 7: br 2 with i*3 ; i++ ; br 0 } } }
    body = assemble(
        ("block", I32), "loop", "loop",
        ("local.get", 0), ("i32.const", 3), "i32.mul",
        ("local.get", 0), ("i32.const", 7), "i32.eq", ("br_if", 2),
        "drop",
        ("local.get", 0), ("i32.const", 1), "i32.add", ("local.set", 0),
        ("br", 0), "end", "end", "unreachable", "end", "end",
    )  # fmt: skip
    assert run((I32,), (I32,), body, 0) == [21]


def test_continue_outer_loop_from_inner_loop() -> None:
    # count pairs (i, j) with j < i < n, looping the outer loop from inside the inner one
    body = assemble(
        "block", "loop",  # outer (label 1 = block exit, label 0 = outer loop)
        ("local.get", 1), ("local.get", 0), "i32.ge_u", ("br_if", 1),
        ("i32.const", 0), ("local.set", 2),
        "loop",  # inner
        ("local.get", 2), ("local.get", 1), "i32.ge_u",
        "if",
        ("local.get", 1), ("i32.const", 1), "i32.add", ("local.set", 1),
        ("br", 2),  # continue the outer loop from inside if + inner loop
        "end",
        ("local.get", 3), ("i32.const", 1), "i32.add", ("local.set", 3),
        ("local.get", 2), ("i32.const", 1), "i32.add", ("local.set", 2),
        ("br", 0), "end",
        "unreachable", "end", "end",
        ("local.get", 3), "end",
    )  # fmt: skip
    assert run((I32,), (I32,), body, 10, local_types=(I32, I32, I32)) == [45]


@pytest.mark.parametrize(
    ("index", "expected"), [(0, 100), (1, 101), (2, 102), (3, 999), (4, 999), (2**32 - 1, 999)]
)
def test_br_table_dispatches_like_a_switch(index: int, expected: int) -> None:
    body = assemble(
        "block", "block", "block", "block",
        ("local.get", 0), ("br_table", ((0, 1, 2), 3)),
        "end", ("i32.const", 100), "return",
        "end", ("i32.const", 101), "return",
        "end", ("i32.const", 102), "return",
        "end", ("i32.const", 999), "end",
    )  # fmt: skip
    assert run((I32,), (I32,), body, index) == [expected]


def test_loop_with_parameters_and_multiple_results() -> None:
    # (a, b) -> loop(param i32 i32) swapping & counting down: returns (b, a) after n swaps
    module_types = [FuncType((I32, I32), (I32, I32))]
    body = assemble(
        ("local.get", 1), ("local.get", 2),
        ("loop", 1),
        ("local.set", 3), ("local.set", 4),  # l3 = top (second), l4 = first
        ("local.get", 3), ("local.get", 4),  # swapped
        ("local.get", 0), ("i32.const", 1), "i32.sub", ("local.tee", 0),
        ("br_if", 0),
        "end", "end",
    )  # fmt: skip
    assert run(
        (I32, I32, I32), (I32, I32), body, 3, 10, 20, local_types=(I32, I32), types=module_types
    ) == [20, 10]


def test_local_set_does_not_change_an_operand_already_pushed() -> None:
    # push l0; l0 = 5; push l0; subtract -> old - 5
    body = assemble(
        ("local.get", 0), ("i32.const", 5), ("local.set", 0), ("local.get", 0), "i32.sub", "end"
    )
    assert run((I32,), (I32,), body, 12) == [7]


def test_trap_happens_before_a_later_store() -> None:
    # i32.div_u by zero is pushed, then a store runs: the trap must come first
    body = assemble(
        ("i32.const", 1), ("local.get", 0), "i32.div_u",
        ("i32.const", 0), ("i32.const", 42), ("i32.store", (2, 0)),
        "drop", ("i32.const", 0), ("i32.load", (2, 0)), "end",
    )  # fmt: skip
    module = Module()
    module.types = [FuncType((I32,), (I32,))]
    module.functions = [Function(0, (), body)]
    module.memories = [MemoryType(Limits(1, None))]
    module.exports = [Export("f", ExternKind.FUNC, 0)]
    instance = compile_module(module).instantiate({})
    with pytest.raises(Trap) as info:
        instance.invoke("f", 0)
    assert info.value.code is TrapCode.INTEGER_DIVIDE_BY_ZERO
    assert instance.memories[0].data[:4] == b"\0\0\0\0"
    assert instance.invoke("f", 1) == [42]


def test_if_else_with_results_and_branch_to_if_label() -> None:
    # if (l0) { br 0 with 1 ; } else { 2 } -> 1 or 2, then + 10
    body = assemble(
        ("local.get", 0), ("if", I32), ("i32.const", 1), ("br", 0), "else", ("i32.const", 2), "end",
        ("i32.const", 10), "i32.add", "end",
    )  # fmt: skip
    assert run((I32,), (I32,), body, 1) == [11]
    assert run((I32,), (I32,), body, 0) == [12]


def test_deep_block_nesting_compiles_flat() -> None:
    # 60 nested blocks, each targeted: more than CPython's 20 nested loops would allow
    depth = 60
    items: list[Any] = ["block"] * depth
    items += [("local.get", 0), ("br_table", (tuple(range(depth - 1)), depth - 1))]
    for level in range(depth):
        items += ["end", ("i32.const", level), "return"]
    items += ["end"]
    body = assemble(*items)
    for index in (0, 17, 58, 59, 1000):
        assert run((I32,), (I32,), body, index) == [min(index, depth - 1)]


def test_infinite_recursion_traps_with_call_stack_exhausted() -> None:
    body = assemble(("local.get", 0), ("call", 0), "end")
    with pytest.raises(Trap) as info:
        run((I32,), (I32,), body, 1)
    assert info.value.code is TrapCode.CALL_STACK_EXHAUSTED


def test_float_semantics_at_the_edges() -> None:
    div = assemble(("local.get", 0), ("local.get", 1), "f64.div", "end")
    assert run((F64, F64), (F64,), div, 1.0, -0.0) == [float("-inf")]
    f32_add = assemble(("local.get", 0), ("local.get", 1), "f32.add", "end")
    # 1 + 2**-24 rounds to 1 in single precision (ties to even)
    assert run((F32, F32), (F32,), f32_add, 1.0, 2.0**-24) == [1.0]
    nearest = assemble(("local.get", 0), "f64.nearest", "end")
    assert run((F64,), (F64,), nearest, 2.5) == [2.0]
    assert str(run((F64,), (F64,), nearest, -0.4)[0]) == "-0.0"


def _fuel_instance(body: list[Instr], fuel: int | None) -> Any:
    module = Module()
    module.types = [FuncType((I32,), (I32,))]
    module.functions = [Function(0, (I32,), body)]
    module.exports = [Export("f", ExternKind.FUNC, 0)]
    return compile_module(module, fuel=True).instantiate({}, EngineLimits(fuel=fuel))


COUNT_DOWN = assemble(
    "loop", ("local.get", 0), ("i32.const", 1), "i32.sub", ("local.tee", 0), ("br_if", 0), "end",
    ("local.get", 0), "end",
)  # fmt: skip


def test_fuel_counts_every_instruction_executed() -> None:
    instance = _fuel_instance(COUNT_DOWN, 10_000)
    assert instance.invoke("f", 100) == [0]
    # loop once, 100 iterations of 5 (a branch re-enters the body, not the loop
    # instruction), then end + local.get + end.
    assert instance.fuel_used == 1 + 100 * 5 + 3


def test_fuel_runs_out_deterministically() -> None:
    instance = _fuel_instance(COUNT_DOWN, 504)
    assert instance.invoke("f", 100) == [0]
    # Checked at loop heads: 400 units run out in iteration 80, whatever the machine.
    short = _fuel_instance(COUNT_DOWN, 400)
    with pytest.raises(Trap) as info:
        short.invoke("f", 100)
    assert info.value.code is TrapCode.OUT_OF_FUEL


def test_fuel_is_charged_across_calls() -> None:
    # f(n) = n == 0 ? 0 : f(n - 1): recursion without loops still runs out
    body = assemble(
        ("local.get", 0), "i32.eqz", ("if", I32), ("i32.const", 0), "else",
        ("local.get", 0), ("i32.const", 1), "i32.sub", ("call", 0), "end", "end",
    )  # fmt: skip
    instance = _fuel_instance(body, 1_000)
    with pytest.raises(Trap) as info:
        instance.invoke("f", 5_000)
    assert info.value.code is TrapCode.OUT_OF_FUEL

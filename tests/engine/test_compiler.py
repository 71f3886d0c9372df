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
from guestproc.engine.module import Export, Function, Instr, LocalTypes, Module
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
    module.functions = [Function(0, LocalTypes.of(local_types), body)]
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
    module.functions = [Function(0, LocalTypes(), body)]
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
    module.functions = [Function(0, LocalTypes.of((I32,)), body)]
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


def _switch_module(cases: int, falls_through: set[int]) -> str:
    """A C-style switch: ``br_table`` into nested blocks; case k adds k*k to the result,
    then leaves the switch, except the cases in ``falls_through``, which go on into the
    next case's code (the way C's missing ``break`` does). The default sets -1, and so
    does falling off the last case."""
    blocks = "(block " * (cases + 2)  # $exit, $default, then one per case
    labels = " ".join(str(k) for k in range(cases))
    body = f"{blocks}(br_table {labels} {cases} (local.get 0)))"
    for k in range(cases):
        add = f"(local.set 1 (i32.add (local.get 1) (i32.const {k * k})))"
        leave = "" if k in falls_through else f"(br {cases - k})"
        body += f" {add} {leave})"
    body += " (local.set 1 (i32.const -1)))"
    return (
        '(module (func (export "switch") (param i32) (result i32) (local i32) '
        f"{body} (local.get 1)))"
    )


@pytest.mark.parametrize("falls_through", [set(), {0, 5, 6, 7, 30}, set(range(40))])
def test_switch_cases_and_fall_through(falls_through: set[int]) -> None:
    from guestproc.engine import parse_module

    cases = 40
    module = parse_module(_switch_module(cases, falls_through))
    instance = compile_module(module).instantiate({})
    for index in [*range(cases + 3), 2**31, 2**32 - 1]:
        expected = 0
        if index >= cases:
            expected = 0xFFFFFFFF  # the default: after every case, -1
        else:
            for k in range(index, cases):
                expected += k * k
                if k not in falls_through:
                    break
            else:
                expected = 0xFFFFFFFF
        assert instance.invoke("switch", index) == [expected], index


def test_deeply_nested_label_regions_still_compile() -> None:
    # 120 sibling blocks that each end only through branches: label regions would nest
    # past CPython's indentation limit, so the compiler falls back to flat guards.
    from guestproc.engine import parse_module

    inner = "".join(
        f"(block (br_if 0 (i32.eq (local.get 0) (i32.const {k}))) (local.set 1 (i32.const {k}))"
        f" (br 1)) (local.set 1 (i32.add (local.get 1) (i32.const 1000)))"
        for k in range(120)
    )
    text = (
        '(module (func (export "f") (param i32) (result i32) (local i32) '
        f"(block {inner}) (local.get 1)))"
    )
    instance = compile_module(parse_module(text)).instantiate({})
    assert instance.invoke("f", 500) == [0]
    assert instance.invoke("f", 0) == [1]  # 0 + 1000, then block 1 sets 1 and leaves
    assert instance.invoke("f", 1) == [0]


def _random_body(rng: Any, depth: int, labels: int) -> str:
    """Random structured control flow over two locals: blocks, loops (bounded by a step
    counter), ifs, br, br_if and br_table to any enclosing label."""
    parts: list[str] = []
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.25 and depth < 6:
            kind = "block" if rng.random() < 0.8 else "loop"
            inner = _random_body(rng, depth + 1, labels + 1)
            if kind == "loop":  # every loop iteration costs a step; 0 steps left: leave
                inner = "(local.set 2 (i32.sub (local.get 2) (i32.const 1))) " + inner
                inner = "(br_if 1 (i32.eqz (local.get 2))) " + inner
                parts.append(f"(block (loop {inner}))")
            else:
                parts.append(f"(block {inner})")
        elif choice < 0.3 and depth < 5:
            # A switch: br_table into nested blocks; each case body ends with a branch to
            # some enclosing label, or falls through into the next case.
            cases = rng.randint(2, 6)
            table = " ".join(str(rng.randrange(cases + 1)) for _ in range(rng.randint(1, 8)))
            text = "(block " * (cases + 1)
            text += f"(br_table {table} (i32.rem_u (local.get 0) (i32.const 9))))"
            for case in range(cases):
                inside = labels + cases - case  # labels enclosing this case's code
                text += " " + _random_body(rng, depth + 2, inside)
                if rng.random() < 0.8:
                    text += f" (br {rng.randrange(inside)})"
                text += ")"
            parts.append(text)
        elif choice < 0.4 and depth < 6:
            then = _random_body(rng, depth + 1, labels + 1)
            other = _random_body(rng, depth + 1, labels + 1)
            parts.append(f"(if (i32.and (local.get 0) (i32.const {rng.randint(1, 7)})) "
                         f"(then {then}) (else {other}))")  # fmt: skip
        elif choice < 0.5 and labels:
            parts.append(
                f"(br_if {rng.randrange(labels)} (i32.lt_u (local.get 1) (i32.const {rng.randint(0, 60)})))"
            )
        elif choice < 0.58 and labels:
            targets = " ".join(str(rng.randrange(labels)) for _ in range(rng.randint(1, 6)))
            parts.append(f"(br_table {targets} (i32.rem_u (local.get 1) (i32.const 7)))")
        elif choice < 0.62 and labels:
            parts.append(f"(br {rng.randrange(labels)})")
        else:
            parts.append(
                f"(local.set 1 (i32.add (i32.mul (local.get 1) (i32.const 3)) (i32.const {rng.randint(1, 9)})))"
            )
            parts.append("(local.set 0 (i32.xor (local.get 0) (local.get 1)))")
    return " ".join(parts)


@pytest.mark.slow
def test_label_regions_agree_with_flat_guards_on_random_control_flow() -> None:
    import random

    from guestproc.engine import parse_module
    from guestproc.engine.compiler import FunctionCompiler

    rng = random.Random(20261124)
    for _ in range(250):
        body = _random_body(rng, 0, 0)
        text = (
            '(module (func (export "f") (param i32 i32) (result i32) (local i32) '
            f"(local.set 2 (i32.const 50)) (block {body}) "
            "(i32.add (local.get 0) (i32.mul (local.get 1) (i32.const 1000)))))"
        )
        module = parse_module(text)
        compiled = [compile_module(module), compile_module(module)]
        flat = FunctionCompiler(compiled[1].info, 0, regions=False).compile()
        compiled[1]._code[0] = compile(flat, "<flat>", "exec")
        instances = [c.instantiate({}) for c in compiled]
        for args in ((0, 0), (5, 17), (3, 59), (2**31, 2**32 - 1)):
            results = [i.invoke("f", *args) for i in instances]
            assert results[0] == results[1], (text, args)

"""Modules shaped to make loading expensive: deep nesting, a wide ``br_table``, many locals.

Each builder returns the bytes of a small valid module whose function 0, exported as ``run``,
takes one i32 (in ``many_locals``, none) and returns one. ``SHAPES`` lists them with what ``run`` returns, so a test can
check that a module not only loads but runs right, and with the sizes ``kindling bench load``
times them at (those of issue 10's reports, and 1,000 levels of ``if`` and ``loop``).

The bytes are written here with a few lines of binary encoding (no toolchain at run time).
The host only writes them; guests decode them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

I32 = 0x7F
BLOCK, LOOP, IF, ELSE, END, BR_IF, BR_TABLE = 0x02, 0x03, 0x04, 0x05, 0x0B, 0x0D, 0x0E
BR, DROP, LOCAL_GET, LOCAL_SET, LOCAL_TEE, I32_CONST = 0x0C, 0x1A, 0x20, 0x21, 0x22, 0x41
I32_EQZ, I32_LT_U, I32_GT_U, I32_ADD, I32_REM_U = 0x45, 0x49, 0x4B, 0x6A, 0x70
EMPTY = 0x40  # the block type of a block without values


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _vector(items: Sequence[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def _section(section_id: int, contents: bytes) -> bytes:
    return bytes((section_id,)) + uleb(len(contents)) + contents


def module(params: int, bodies: Sequence[tuple[int, bytes]]) -> bytes:
    """A module of functions of one type, ``params`` i32s to one i32, each body given as
    ``(declared i32 locals, code ending with end)``; function 0 is exported as ``run``."""
    functype = b"\x60" + _vector([bytes((I32,))] * params) + _vector([bytes((I32,))])
    codes = []
    for locals_count, code in bodies:
        declared = _vector([uleb(locals_count) + bytes((I32,))] if locals_count else [])
        codes.append(uleb(len(declared) + len(code)) + declared + code)
    return (
        b"\x00asm\x01\x00\x00\x00"
        + _section(1, _vector([functype]))
        + _section(3, _vector([uleb(0)] * len(bodies)))
        + _section(7, _vector([uleb(3) + b"run" + b"\x00" + uleb(0)]))  # function 0
        + _section(10, _vector(codes))
    )


def _const(value: int) -> bytes:
    return bytes((I32_CONST,)) + sleb(value)


def nested_blocks(depth: int) -> bytes:
    """``depth`` nested blocks; the innermost branches out of all of them when the argument
    is not zero. ``run(x)`` is ``x + 7``. Three bytes per level."""
    code = bytes((BLOCK, EMPTY)) * depth
    code += bytes((LOCAL_GET, 0, BR_IF)) + uleb(depth - 1)
    code += bytes((END,)) * depth
    code += bytes((LOCAL_GET, 0)) + _const(7) + bytes((I32_ADD, END))
    return module(1, [(0, code)])


def br_table_ladder(width: int) -> bytes:
    """``width`` nested blocks, the innermost a ``br_table`` with a target in each; after
    every block's end a counter goes up. ``run(x)`` is ``width - min(x, width - 1)``."""
    code = bytes((BLOCK, EMPTY)) * width
    code += bytes((LOCAL_GET, 0, BR_TABLE)) + uleb(width)
    code += b"".join(uleb(depth) for depth in range(width)) + uleb(width - 1)
    step = bytes((END, LOCAL_GET, 1)) + _const(1) + bytes((I32_ADD, LOCAL_SET, 1))
    code += step * width + bytes((LOCAL_GET, 1, END))
    return module(1, [(1, code)])


def br_table_switch(cases: int) -> bytes:
    """A C-style ``switch``: a ``br_table`` into ``cases + 2`` nested blocks, each case's code
    after its block's end setting a result and leaving the switch. ``run(x)`` is ``3x + 1``
    for ``x < cases``, else 2**32 - 1 (the default case)."""
    code = bytes((BLOCK, EMPTY)) * (cases + 2)
    code += bytes((LOCAL_GET, 0, BR_TABLE)) + uleb(cases)
    code += b"".join(uleb(case) for case in range(cases)) + uleb(cases)
    for case in range(cases):
        code += bytes((END,)) + _const(3 * case + 1) + bytes((LOCAL_SET, 1, BR))
        code += uleb(cases - case)  # to the outermost block, the switch's end
    code += bytes((END,)) + _const(-1) + bytes((LOCAL_SET, 1, END, LOCAL_GET, 1, END))
    return module(1, [(1, code)])


def values_across_blocks(depth: int) -> bytes:
    """``depth`` nested blocks, each with a result and a value left on the operand stack
    outside it; the innermost's result is the argument, and each adds its outside value to
    it. ``run(x)`` is ``x + depth``."""
    code = (_const(1) + bytes((BLOCK, I32))) * depth + bytes((LOCAL_GET, 0))
    code += bytes((END, I32_ADD)) * depth + bytes((END,))
    return module(1, [(0, code)])


def deep_stack(height: int) -> bytes:
    """``height`` values on the operand stack, then as many stores to a local under them,
    then the values dropped. ``run(x)`` is ``x + height``."""
    code = bytes((LOCAL_GET, 0, LOCAL_SET, 1)) + _const(0) * height
    store = bytes((LOCAL_GET, 1)) + _const(1) + bytes((I32_ADD, LOCAL_SET, 1))
    code += store * height + bytes((DROP,)) * height + bytes((LOCAL_GET, 1, END))
    return module(1, [(1, code)])


def many_locals(functions: int, count: int) -> bytes:
    """``functions`` functions without parameters declaring ``count`` i32 locals each, and
    reading the last one. ``run()`` is 5."""
    code = bytes((LOCAL_GET,)) + uleb(count - 1) + _const(5) + bytes((I32_ADD, END))
    return module(0, [(count, code)] * functions)


def nested_ifs(depth: int) -> bytes:
    """``depth`` nested ``if``s with values, level k entered while the argument is above k.
    ``run(x)`` is ``x`` for ``x < depth``, else 1,000,000."""
    code = b""
    for level in range(depth):
        code += bytes((LOCAL_GET, 0)) + _const(level) + bytes((I32_GT_U, IF, I32))
    code += _const(1_000_000)
    for level in reversed(range(depth)):
        code += bytes((ELSE,)) + _const(level) + bytes((END,))
    return module(1, [(0, code + bytes((END,)))])


def nested_loops(depth: int) -> bytes:
    """``depth`` nested loops, each a branch target: a counter goes up in the innermost,
    which restarts the outermost when the count is a multiple of 7; every loop repeats while
    the count is below the argument. ``run(x)`` is the least c >= max(x, 1) with c % 7 != 0."""
    again = bytes((LOCAL_GET, 1, LOCAL_GET, 0, I32_LT_U, BR_IF, 0))
    code = bytes((LOOP, EMPTY)) * depth
    code += bytes((LOCAL_GET, 1)) + _const(1) + bytes((I32_ADD, LOCAL_TEE, 1)) + _const(7)
    code += bytes((I32_REM_U, I32_EQZ, BR_IF)) + uleb(depth - 1)
    code += (again + bytes((END,))) * depth
    return module(1, [(1, code + bytes((LOCAL_GET, 1, END)))])


def _count_with_restarts(argument: int) -> int:
    count = max(argument, 1)
    return count + 1 if count % 7 == 0 else count


@dataclass(frozen=True)
class Shape:
    """A module shape: ``build(size)`` is the module, ``expect(size, x)`` what its ``run(x)``
    returns (``run()`` without ``takes_argument``); ``kindling bench load`` times it at
    ``size`` unless told otherwise."""

    name: str
    size: int
    build: Callable[[int], bytes]
    expect: Callable[[int, int], int]
    what: str  # for the table, with ``{size}``
    takes_argument: bool = True


SHAPES = {
    shape.name: shape
    for shape in (
        Shape(
            "nested_blocks",
            40_000,
            nested_blocks,
            lambda size, x: (x + 7) & 0xFFFFFFFF,
            "{size} nested blocks",
        ),
        Shape(
            "br_table_ladder",
            8_000,
            br_table_ladder,
            lambda size, x: size - min(x, size - 1),
            "a br_table to each of {size} nested blocks",
        ),
        Shape(
            "br_table_switch",
            8_000,
            br_table_switch,
            lambda size, x: 3 * x + 1 if x < size else 0xFFFFFFFF,
            "a switch of {size} cases",
        ),
        Shape(
            "values_across_blocks",
            20_000,
            values_across_blocks,
            lambda size, x: (x + size) & 0xFFFFFFFF,
            "{size} nested blocks, a value outside each",
        ),
        Shape(
            "deep_stack",
            20_000,
            deep_stack,
            lambda size, x: (x + size) & 0xFFFFFFFF,
            "{size} stores under a stack as deep",
        ),
        Shape(
            "many_locals",
            50_000,
            lambda size: many_locals(100, size),
            lambda size, x: 5,
            "100 functions declaring {size} locals each",
            takes_argument=False,
        ),
        Shape(
            "nested_ifs",
            1_000,
            nested_ifs,
            lambda size, x: x if x < size else 1_000_000,
            "{size} nested ifs",
        ),
        Shape(
            "nested_loops",
            1_000,
            nested_loops,
            lambda size, x: _count_with_restarts(x),
            "{size} nested loops, all branch targets",
        ),
    )
}

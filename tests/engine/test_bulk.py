"""Bulk memory operations against their definition: long ones take another path (views, not
temporaries), so both paths are compared with plain slice assignment, overlaps included."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from guestproc.engine import support
from guestproc.engine.errors import Trap, TrapCode

LENGTHS = [0, 1, 4095, support.VIEW_FROM - 1, support.VIEW_FROM, support.VIEW_FROM + 1, 200_001]
SIZE = 3 * support.VIEW_FROM + 123


@pytest.mark.parametrize("count", LENGTHS)
def test_fill_copy_and_init_write_what_slices_would(count: int) -> None:
    rng = random.Random(count)
    segment = rng.randbytes(max(count, 1) + 77)
    for _ in range(6):
        memory = bytearray(rng.randbytes(max(SIZE, count + 1000)))
        expected = bytearray(memory)
        room = len(memory) - count
        dst, src = rng.randrange(room + 1), rng.randrange(room + 1)
        if rng.random() < 0.5:  # overlapping copies, both directions
            src = min(room, max(0, dst + rng.choice((-1, 1)) * rng.randrange(count + 1)))
        support.memory_copy(memory, dst, src, count)
        expected[dst : dst + count] = bytes(expected[src : src + count])
        value = rng.randrange(1 << 32)
        support.memory_fill(memory, src, value, count)
        expected[src : src + count] = bytes((value & 0xFF,)) * count
        start = rng.randrange(len(segment) - count + 1)
        support.memory_init(memory, segment, dst, start, count)
        expected[dst : dst + count] = segment[start : start + count]
        assert memory == expected
        memory.extend(b"\0")  # no view is left holding the buffer: it can still grow


def test_a_long_operation_out_of_bounds_changes_nothing() -> None:
    memory = bytearray(2 * support.VIEW_FROM)
    operations: list[Callable[[], object]] = [
        lambda: support.memory_fill(memory, 1, 9, len(memory)),
        lambda: support.memory_copy(memory, 0, 1, len(memory)),
        lambda: support.memory_init(memory, bytes(len(memory) + 1), 1, 0, len(memory)),
    ]
    for operation in operations:
        with pytest.raises(Trap) as info:
            operation()
        assert info.value.code is TrapCode.OUT_OF_BOUNDS_MEMORY
    assert memory == bytearray(2 * support.VIEW_FROM)

"""The fuel budget of an instance, as its metered code sees it.

Compiled functions subtract block costs from ``FUEL``, a closure cell they all share (so a
call needs no bookkeeping), and test it at function entries and loop heads. The cell holds at
most ``FUEL_WINDOW`` of the budget at a time, the rest waits in the tank's reserve: CPython
3.11 runs ``int`` arithmetic and comparisons much faster on values below 2**30 (one internal
digit), and budgets are often larger. When the cell goes negative the code calls
``FuelTank.refuel``, which tops the cell up from the reserve, or traps with "all fuel
consumed" once the whole budget is spent.

Bulk work pays by its length as well as by its instruction, so that a budget bounds time and
not just the number of instructions: ``memory.fill``/``copy``/``init`` (``pay_bytes``),
``table.fill``/``copy``/``init`` and ``table.grow``'s new elements (``pay_elements``),
``memory.grow``'s new pages (``pay_pages``), and the bytes that WASI calls move (``pay_bytes``,
see ``guestproc.wasi``). Each charges ``BULK_BASE`` plus the length at its rate, at once,
after the operation's bounds are checked and before it does anything: a budget that cannot
pay traps there, and the operation is not done at all. The rates come from ``kindling bench
fuel``: a unit of bulk work, a short operation's call included, costs about the CPU time of a
unit of ordinary instructions.
"""

from __future__ import annotations

from types import CellType

from .errors import Trap, TrapCode

FUEL_WINDOW = 1 << 29
"""The most fuel the counter cell holds at once (well below 2**30, see the docstring)."""

# Measured with ``kindling bench fuel`` (CPython 3.11, 2 cores): the benchmark programs cost
# 0.005-0.052 us of CPU per unit, 0.014 in the median. A bulk operation's call costs 0.3-0.6
# us whatever its length (BULK_BASE); per unit of length, the slowest operation of each kind
# sets the rate: memory.init (0.1 ns a byte from 1 MiB on), a table.copy of 64 Ki elements
# (10 ns an element), memory.grow (0.6 ns a byte of new memory: the kernel faults each page
# in). With these rates the bulk loops cost 0.004-0.049 us per unit, 0.021 in the median.
BULK_BASE = 8
"""Units every bulk operation pays on top of its instruction's one, whatever its length."""

BYTES_PER_UNIT = 128
"""Bytes of bulk memory work one fuel unit pays for."""

ELEMENTS_PER_UNIT = 2
"""Table elements of bulk table work one fuel unit pays for."""

UNITS_PER_PAGE = 2048
"""What ``memory.grow`` pays for each new 64 KiB page (32 bytes a unit)."""


class FuelTank:
    """A fuel budget: ``cell`` is what the compiled code counts down, ``reserve`` the rest."""

    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ValueError(f"a fuel budget cannot be negative, got {budget}")
        self.budget = budget
        first = min(budget, FUEL_WINDOW)
        self.cell = CellType(first)
        self.reserve = budget - first

    def refuel(self) -> bool:
        """Called by compiled code when the cell went negative: top it up and return True, or
        raise ``Trap(OUT_OF_FUEL)`` when the budget is spent (the cell stays negative, so every
        later check traps too)."""
        total = self.reserve + self.cell.cell_contents
        if total < 0:
            self.reserve = 0
            self.cell.cell_contents = total
            raise Trap(TrapCode.OUT_OF_FUEL)
        first = min(total, FUEL_WINDOW)
        self.cell.cell_contents = first
        self.reserve = total - first
        return True

    def pay(self, units: int) -> None:
        """Spend ``units`` now, ahead of the work they pay for; raise ``Trap(OUT_OF_FUEL)``
        (through ``refuel``) when the rest of the budget cannot pay -- the work must then not
        be done."""
        cell = self.cell
        left = cell.cell_contents - units
        cell.cell_contents = left
        if left < 0:
            self.refuel()

    def pay_bytes(self, count: int) -> None:
        """Pay for a bulk operation on ``count`` bytes (see ``pay``)."""
        self.pay(BULK_BASE + count // BYTES_PER_UNIT)

    def pay_elements(self, count: int) -> None:
        """Pay for a bulk operation on ``count`` table elements (see ``pay``)."""
        self.pay(BULK_BASE + count // ELEMENTS_PER_UNIT)

    def pay_pages(self, count: int) -> None:
        """Pay for ``count`` new pages of linear memory (see ``pay``)."""
        self.pay(BULK_BASE + count * UNITS_PER_PAGE)

    @property
    def used(self) -> int:
        """Fuel spent so far: exact whenever control is back with the host (at most the budget)."""
        remaining: int = self.reserve + self.cell.cell_contents
        return min(self.budget, self.budget - remaining)

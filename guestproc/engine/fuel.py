"""The fuel budget of an instance, as its metered code sees it.

Compiled functions subtract block costs from ``FUEL``, a closure cell they all share (so a
call needs no bookkeeping), and test it at function entries and loop heads. The cell holds at
most ``FUEL_WINDOW`` of the budget at a time, the rest waits in the tank's reserve: CPython
3.11 runs ``int`` arithmetic and comparisons much faster on values below 2**30 (one internal
digit), and budgets are often larger. When the cell goes negative the code calls
``FuelTank.refuel``, which tops the cell up from the reserve, or traps with "all fuel
consumed" once the whole budget is spent.
"""

from __future__ import annotations

from types import CellType

from .errors import Trap, TrapCode

FUEL_WINDOW = 1 << 29
"""The most fuel the counter cell holds at once (well below 2**30, see the docstring)."""


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

    @property
    def used(self) -> int:
        """Fuel spent so far: exact whenever control is back with the host (at most the budget)."""
        remaining: int = self.reserve + self.cell.cell_contents
        return min(self.budget, self.budget - remaining)

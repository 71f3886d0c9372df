"""Where fuel can be charged earlier than its basic block: a plan computed before compiling.

Metered code pays one statement per basic block it runs, so the fewer blocks that need a
statement of their own, the cheaper metering is. A *clean* ``if`` -- one whose arms hold no
branch, ``return`` or ``unreachable`` at any depth -- is always left through its ``end``, so
two of its charges can move up to the block that ends with the ``if`` itself:

- ``hoist``: the cheaper arm's first block costs ``min(then, else)``; both arms certainly pay
  that much, so the block before the ``if`` pays it and each arm's first block pays only the
  rest (which is nothing for the cheaper arm);
- ``join``: the block after ``end`` runs whichever arm ran, so it is paid up front too.

The blocks that follow a forward ``br_if`` (one leaving a block or an ``if``, not going
back to a loop's head) run every time that branch is not taken, which is the usual case for
such early exits: a *chain* of them -- fall-through blocks linked by forward ``br_if`` -- is
paid by the first block of the chain, and a taken branch gives back what the rest of the
chain did not run. And when such a ``br_if`` is the only way into the code after its target
block's ``end`` (nothing else branches there and the block cannot fall through to its end),
that code runs exactly when the branch is taken, so the taken branch pays for the chain that
starts there.

Totals stay exact for every path that returns normally (a trap may have paid for a few
instructions it never reached). Costs here count instructions exactly as the compiler does:
a block runs up to and including the next control instruction that ends it (``block`` and
calls do not end one; ``unreachable`` ends everything after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import opcodes as op
from .module import Instr

ENDS_BLOCK = frozenset(
    {op.LOOP, op.IF, op.ELSE, op.END, op.BR, op.BR_IF, op.BR_TABLE, op.RETURN, op.UNREACHABLE}
)
_LEAVES = frozenset({op.BR, op.BR_IF, op.BR_TABLE, op.RETURN, op.UNREACHABLE})
_NO_FALL_THROUGH = frozenset({op.BR, op.BR_TABLE, op.RETURN, op.UNREACHABLE})


@dataclass(frozen=True)
class IfCharge:
    """The charges one clean ``if`` moves up: see the module docstring."""

    hoist: int
    join: int


def block_cost(body: Sequence[Instr], start: int) -> int:
    """Instructions of the basic block that begins at ``start``, its last instruction included."""
    count = 0
    for index in range(start, len(body)):
        count += 1
        if body[index].op in ENDS_BLOCK:
            break
    return count


class FuelPlan:
    """What a function's metered code pays ahead of its blocks (see the module docstring)."""

    def __init__(self, body: Sequence[Instr], shortcuts: bool = True) -> None:
        """Without ``shortcuts`` nothing moves: every block pays for itself when it ends (the
        plain scheme, kept as the reference the shortcuts are tested against)."""
        self.body = body
        if shortcuts:
            self.ifs, self.forward, self.sole_entry = _scan(body)
        else:
            self.ifs, self.forward, self.sole_entry = {}, set(), {}

    def block_charge(self, start: int) -> int:
        """What the block beginning at ``start`` pays when it ends, moved-up charges included."""
        cost = block_cost(self.body, start)
        last = start + cost - 1
        plan = self.ifs.get(last)
        return cost + plan.hoist + plan.join if plan is not None else cost

    def chain_from(self, start: int) -> list[int]:
        """The charges of the chain of blocks from ``start`` on: a block, then while it ends
        with a forward ``br_if``, the block that follows it."""
        charges: list[int] = []
        while start < len(self.body):
            charges.append(self.block_charge(start))
            last = start + block_cost(self.body, start) - 1
            if last not in self.forward:
                break
            start = last + 1
        return charges


def _scan(body: Sequence[Instr]) -> tuple[dict[int, IfCharge], set[int], dict[int, int]]:
    """The clean ``if`` instructions, with what they move up; the forward ``br_if``s; and the
    forward ``br_if``s that are the sole entry to the code after their target's ``end`` (with
    the index where that code starts)."""
    plans: dict[int, IfCharge] = {}
    forward: set[int] = set()
    incoming: dict[int, int] = {}  # block start -> branches that target it
    target_of: dict[int, int] = {}  # forward br_if -> the start of the block it leaves
    block_end: dict[int, int] = {}  # block start -> index of its end
    # Per open structured instruction: (its index, index of its else, whether it stays clean).
    open_at: list[list[int]] = []
    for index, instr in enumerate(body):
        code = instr.op
        if code == op.BR_IF and instr.arg < len(open_at):
            target = open_at[-1 - instr.arg][0]
            if body[target].op != op.LOOP:
                forward.add(index)
                target_of[index] = target
        if code in (op.BR, op.BR_IF):
            depths: tuple[int, ...] = (instr.arg,)
        elif code == op.BR_TABLE:
            depths = (*instr.arg[0], instr.arg[1])
        else:
            depths = ()
        for depth in depths:
            if depth < len(open_at):
                start = open_at[-1 - depth][0]
                incoming[start] = incoming.get(start, 0) + 1
        if code in (op.BLOCK, op.LOOP, op.IF):
            open_at.append([index, -1, 1])
        elif code == op.ELSE and open_at:
            open_at[-1][1] = index
        elif code == op.END and open_at:
            start, else_at, clean = open_at.pop()
            block_end[start] = index
            if clean and body[start].op == op.IF:
                then_cost = block_cost(body, start + 1)
                hoist = 0 if else_at < 0 else min(then_cost, block_cost(body, else_at + 1))
                join = block_cost(body, index + 1) if index + 1 < len(body) else 0
                plans[start] = IfCharge(hoist, join)
            if not clean and open_at:
                open_at[-1][2] = 0
        elif code in _LEAVES and open_at:
            open_at[-1][2] = 0
    sole_entry: dict[int, int] = {}
    for branch, target in target_of.items():
        end = block_end.get(target)
        if (
            end is not None
            and end + 1 < len(body)
            and body[target].op == op.BLOCK
            and incoming.get(target) == 1
            and body[end - 1].op in _NO_FALL_THROUGH
        ):
            sole_entry[branch] = end + 1
    return plans, forward, sole_entry

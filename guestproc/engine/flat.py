"""The flattened lowering: a Wasm function as a dispatch loop over its basic blocks.

The structured lowering (``compiler``) nests Python blocks as deeply as the Wasm code nests,
and CPython takes at most 100 levels of indentation and 20 nested loops. This one takes any
nesting: the body is cut into *segments* where control can arrive other than by falling
through (a loop head that a branch targets, the code after a block's end that a branch
reaches, an ``if``'s else arm and end), and every transfer of control is an assignment to
``_b`` and a ``continue``::

    def f3(l0):
        _b = 0
        while True:
            if _b < 2:
                if _b < 1:
                    ...             # segment 0: the entry
                    if not (l0):
                        _b = 2      # the if's else arm
                        continue
                    ...
                else:
                    ...             # segment 1
            else:
                ...                 # segment 2

A binary tree of ``if _b < N`` finds a segment in about log2(segments) tests, and keeps the
indentation at about that depth whatever the nesting. Everything between control
instructions -- operands, temporaries, calls, memory, traps -- is the structured compiler's
own code (this class inherits it); only ``block``, ``loop``, ``if``, ``else``, ``end`` and
the branches' targets differ. Values carried by labels go through the same ``b<label>_<i>``
variables.

Fuel is metered by the plain scheme (every basic block pays when it ends), with a check at
the entry segment and at every loop head's segment, so a flattened function counts exactly
what the structured one counts.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from . import opcodes as op
from .compiler import FUNC, IF, LOOP, Frame, FunctionCompiler, ModuleInfo, Operand, Suite
from .errors import CompileError
from .fuelplan import IfCharge
from .module import Instr, Module

ENTRY = 0  # the segment the function starts in


def _ifs_with_else(body: Sequence[Instr]) -> set[int]:
    """The indices of the ``if`` instructions that have an ``else``."""
    found: set[int] = set()
    open_at: list[int] = []
    for index, instr in enumerate(body):
        code = instr.op
        if code in (op.BLOCK, op.LOOP, op.IF):
            open_at.append(index)
        elif code == op.END:
            if open_at:
                open_at.pop()
        elif code == op.ELSE:
            found.add(open_at[-1])
    return found


class FlatCompiler(FunctionCompiler):
    """Compiles one function with flattened control flow (see the module docstring)."""

    vector_lanes = False  # its locals may live in a list: a v128 stays one int

    max_depth = max_loops = sys.maxsize  # any nesting

    def __init__(self, info: ModuleInfo, func_index: int, fuel: bool = False) -> None:
        super().__init__(info, func_index, fuel, fuel_shortcuts=False, regions=False)
        # Statements go to the current segment at indentation 0; ``_assemble`` indents each
        # segment under its leaf of the dispatch tree.
        self.suites = [Suite(0)]
        self.segments: list[tuple[int, int]] = []  # (segment, where its lines start in out)
        self.next_segment = ENTRY + 1
        self.label_segment: dict[int, int] = {}  # label id -> segment its branches go to
        self.other_arm: dict[int, int] = {}  # an if's label id -> segment when false
        self.with_else = _ifs_with_else(self.body)
        self.loops: list[Frame] = []  # the loops open here that branches target, innermost last
        # Exit aliases (see ``_jump``): the loop whose end the ``end``s just read follow, how
        # many of those ``end``s the structured lowering charges, and that count per alias.
        self.ended_loop: Frame | None = None
        self.alias_ends = 0
        self.alias_charges: dict[int, int] = {}
        self.alias_placeholders = False

    # --- segments ---------------------------------------------------------------------------

    def _new_segment(self) -> int:
        self.next_segment += 1
        return self.next_segment - 1

    def _start_segment(self, segment: int, falls_in: bool) -> None:
        """Start ``segment`` here; ``falls_in``: the code before it reaches it by falling
        through (it jumps there, as every segment ends with a transfer of control)."""
        if falls_in:
            self._goto(segment)
        self.segments.append((segment, len(self.out)))

    def _goto(self, segment: int) -> None:
        self._raw(0, f"_b = {segment}; continue")

    def _target(self, frame: Frame) -> int:
        """The segment a branch to ``frame``'s label goes to (made on first use)."""
        segment = self.label_segment.get(frame.id)
        if segment is None:
            segment = self.label_segment[frame.id] = self._new_segment()
        return segment

    # --- control ----------------------------------------------------------------------------

    def _enter_function(self) -> None:
        self._start_segment(ENTRY, falls_in=False)
        super()._enter_function()

    def _jump(self, target: Frame, values: list[Operand]) -> tuple[list[str], set[int]]:
        if target.kind == FUNC:
            return self._return_lines(values), set()
        target.branched = True
        lines = [self._assign(target.vars, values)] if values else []
        loop = self.loops[-1] if self.loops else None
        if self.fuel and loop is not None and target.start in loop.exit_aliases:
            # The structured lowering makes this branch a plain ``break`` out of the loop's
            # ``while``, into the charges of the ``end``s that follow the loop's own (those
            # it charges: the ones falling through the loop can reach). It pays for them, so
            # this one does too, to count the same; how much is known at the target's end.
            lines.append(f"FUEL -= @A{target.id}@")
            self.alias_placeholders = True
        return [*lines, f"_b = {self._target(target)}; continue"], set()

    def _loop(self, instr: Instr, targeted: bool, module: Module) -> None:
        frame = self._open_loop(instr, targeted, module)
        if targeted:
            self._start_segment(self._target(frame), falls_in=True)
            if self.fuel:
                self._fuel_check()  # every branch back to the head passes it
            self.stack.extend(Operand(v) for v in frame.vars)
            self.loops.append(frame)
        self.frames.append(frame)

    def _if(self, instr: Instr, targeted: bool, module: Module, if_charge: IfCharge | None) -> None:
        frame, cond = self._open_if(instr, targeted, module)
        if self._index in self.with_else or frame.vars:
            other = self._new_segment()  # the else arm (or the implicit one, passing values)
        else:
            other = self._target(frame)  # nothing to do when false: straight to the end
        self.other_arm[frame.id] = other
        self._raw(0, f"if not ({cond.condition()}): _b = {other}; continue")
        self.frames.append(frame)

    def _else(self) -> None:
        frame = self.frame
        self._finish_arm(frame)
        frame.then_reachable = not frame.unreachable
        if not frame.unreachable:
            self._goto(self._target(frame))
        self._start_segment(self.other_arm[frame.id], falls_in=False)
        frame.seen_else = True
        frame.unreachable = False
        self.stack.truncate(frame.height)
        self.stack.extend(frame.param_operands)

    def _end(self) -> None:
        frame = self.frames[-1]
        if frame.kind == IF and not frame.seen_else and frame.vars:
            self._else()  # the implicit else arm passes the parameters through
        self.frames.pop()
        if frame.kind == FUNC:
            if not frame.unreachable:
                self._lines(self._return_lines(self._pop(len(frame.results))))
            return
        falls = not frame.unreachable
        if self.loops and self.loops[-1] is frame:
            self.loops.pop()
        self._count_alias_end(frame)
        segment = None if frame.kind == LOOP else self.label_segment.get(frame.id)
        # Results reach the label's variables when something jumps to its end (and always
        # for an if, whose arms both end there); otherwise they stay on the stack.
        via_vars = frame.kind == IF or segment is not None
        results: list[Operand] = []
        if frame.kind == IF:
            self._finish_arm(frame)
        elif falls and via_vars and frame.vars:
            self._line(self._assign(frame.vars, self._pop(len(frame.results))))
        elif falls:
            results = self._pop(len(frame.results))
        if segment is not None:
            self._start_segment(segment, falls_in=falls)
            falls = True
        self.stack.truncate(frame.height)
        self.stack.extend([Operand(v) for v in frame.vars] if via_vars else results)
        if not falls:
            self.frames[-1].unreachable = True

    def _count_alias_end(self, frame: Frame) -> None:
        """Follow the ``end``s after a loop's: which exit aliases' charges the structured
        lowering emits (a frame's ``end`` is charged when falling through reaches it)."""
        loop = self.ended_loop
        if frame.kind == LOOP:
            self.ended_loop, self.alias_ends = frame, 0
        elif loop is not None and frame.start in loop.exit_aliases:
            self.alias_ends += not frame.unreachable
            self.alias_charges[frame.id] = self.alias_ends
        else:
            self.ended_loop = None

    # --- assembly ---------------------------------------------------------------------------

    def _assemble(self) -> str:
        lines = self._header()
        lines.append(f"    _b = {ENTRY}")
        lines.append("    while True:")
        self._dispatch(sorted(self._segment_lines()), 0, len(self.segments), 8, lines)
        return self._wrap(lines)

    def _segment_lines(self) -> list[tuple[int, int, int]]:
        """Each segment's lines in ``out`` (segment, start, end), in the order they were made;
        the charges of exit aliases filled in."""
        if self.alias_placeholders:
            charges = self.alias_charges
            out = self.out
            for i, line in enumerate(out):
                if "@A" in line:
                    out[i] = re.sub(r"@A(\d+)@", lambda m: str(charges.get(int(m[1]), 0)), line)
        bounds = [start for _, start in self.segments] + [len(self.out)]
        return [(segment, bounds[i], bounds[i + 1]) for i, (segment, _) in enumerate(self.segments)]

    def _dispatch(
        self,
        ranges: list[tuple[int, int, int]],
        first: int,
        stop: int,
        indent: int,
        into: list[str],
    ) -> None:
        """The dispatch tree over ``ranges[first:stop]`` (segment, start, end), ``indent``
        spaces in: one space per level (about log2 of the segments), which keeps the source
        of a deep function from growing much faster than the function.

        It recurses once per level of the tree, so never deeply.
        """
        pad = " " * indent
        if stop - first == 1:
            _, start, end = ranges[first]
            into.extend(pad + line for line in self.out[start:end])
            if start == end:  # pragma: no cover - every segment ends with a transfer
                raise CompileError(
                    f"function {self.func_index}: segment {ranges[first][0]} is empty"
                )
            return
        middle = (first + stop) // 2
        into.append(f"{pad}if _b < {ranges[middle][0]}:")
        self._dispatch(ranges, first, middle, indent + 1, into)
        into.append(f"{pad}else:")
        self._dispatch(ranges, middle, stop, indent + 1, into)

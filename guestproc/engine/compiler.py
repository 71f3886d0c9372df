"""Compile one WebAssembly function into the source of one Python function.

The operand stack exists only at compile time: each stack slot is a Python expression
(``Operand``). Pure expressions (constants, locals, arithmetic that cannot trap) stay lazy and
are folded into the expression that consumes them; anything that can trap or reads mutable
state (memory, mutable globals, calls) is evaluated into a temporary where it occurs, so
traps and side effects keep Wasm's order. Before ``local.set x`` any lazy slot that reads
``x`` is evaluated first.

Control flow, given that CPython allows only 20 nested loops and 100 levels of indentation:

- a ``loop`` that some branch targets becomes ``while True:``; a branch to it is
  ``continue``, falling off its end is ``break``;
- a ``block`` (and an ``if``'s label, and an untargeted loop) opens no Python block at all.
  A branch to it sets the pending-label variable ``_t`` to the label's id; statements after a
  point where ``_t`` may be set run under ``if not _t:`` guards placed side by side, not
  nested; at the label's end ``_t`` is reset. A branch that must leave a ``while`` sets
  ``_t`` and breaks; after that ``while``, ``_t`` decides whether to break again, continue,
  or fall into the guards.
- label ids are numbered in nesting order, so "outside the current ``while``" is
  ``_t < id of that while's loop``.

The generated source names only numbers and internal identifiers (``l3`` local, ``t7``
temporary, ``b4_0`` label value, ``f12`` function, ``g2`` global, capitals for helpers);
nothing from the module's names or strings reaches it.
"""

from __future__ import annotations

import builtins
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from types import CodeType, MappingProxyType
from typing import NamedTuple, SupportsIndex

from . import opcodes as op
from . import wrapping
from .errors import CompileError
from .fuelplan import FuelPlan, IfCharge
from .module import Instr, Module
from .numeric import f32_from_bits, f64_from_bits
from .operators import COND, LOADS, M32, M64, MAY_TRAP, RING, STORES, VALUE
from .simd_lowering import lane_mode, packed, unpacked
from .simd_lowering import lower as lower_simd
from .simd_opcodes import SIMD_CODES
from .types import FuncType, ValType

MAX_WHILE_NESTING = 18  # CPython: 20 statically nested blocks
MAX_INDENT = 90  # CPython's tokenizer: 100 levels
DEEP_NESTING = MAX_INDENT - 1
"""Functions whose ``if``s and loops nest deeper than this cannot be lowered structured: each
indents its code one level more than the function body. Shallower ones are tried (they often
fit: it depends on the branches, which may double the indentation)."""
MAX_REGION_INDENT = 40  # label regions nest; past this, flat guards (see _enter_label)
# Label regions chained with ``elif``: CPython's compiler recurses once per ``elif`` (a chain
# of about 2,500 fails with RecursionError), and each region of a chain carries the labels
# the earlier ones may have left, so a chain's cost grows with its square. Longer chains
# start again with ``if``.
MAX_ELIF_CHAIN = 200
FUEL_MAKER = "_fuel_f"
"""With fuel, the source of function N defines ``_fuel_fN()``, which returns function N
(``_wrap``: the maker of a function named X is ``_fuel_X``)."""
MAX_LAZY_EXPR = 160  # longer expressions are evaluated into a temporary
# A br_table with more runs of targets than this picks its target from a tuple when every
# target's jump differs only in a number (``_t = N``, or flattened ``_b = N``). Measured
# (a jump per index): 16 targets, 107 ns by the tree of tests and 90 ns by the tuple; 512
# targets, 256 and 100 ns. And the tree's source grows as n log n and costs CPython's
# compiler about 3 KiB per line: 8,000 targets needed over 90 MiB to compile.
TABLE_DISPATCH_RUNS = 8
COMPILED_FILENAME = "<wasm function"
"""How the file name of every code object compiled from a module's function begins."""
_NUMBERED_JUMP = re.compile(r"(_[tb]) = (\d+)(.*)")
NARROWED = re.compile(r"\{v\} & (0x[0-9A-F]+)")  # a store's value masked to its width
MAX_UNSETTLED = 64
"""A ``local.set`` looks for lazy operands reading the local among at most this many operands
at the top of the stack; past that it evaluates every lazy operand at once (no real code keeps
so many values on the stack, and a deep stack must not make each ``local.set`` costly)."""
SHIFTS = frozenset({op.BY_NAME["i32.shl"], op.BY_NAME["i64.shl"]})  # the count enters masked
SUMS = frozenset(op.BY_NAME[f"i{bits}.{name}"] for bits in (32, 64) for name in ("add", "sub"))
SHIFT_COUNTS = {  # shift -> (its width, the count as its templates mask it)
    op.BY_NAME[f"i{bits}.{name}"]: (bits, f"({{1}} & {bits - 1})")
    for bits in (32, 64)
    for name in ("shl", "shr_u", "shr_s")
}
SIGNED_SHIFTS = frozenset({op.BY_NAME["i32.shr_s"], op.BY_NAME["i64.shr_s"]})
REREAD = {  # operators whose template reads an operand more than once -> which operands
    code: reread
    for code, template in VALUE.items()
    if (reread := tuple(i for i in range(2) if template.count(f"{{{i}}}") > 1))
}
SIGNED_DIVISIONS = {  # div_s and rem_s -> (width, whether it is the remainder)
    op.BY_NAME[f"i{bits}.{name}"]: (bits, name == "rem_s")
    for bits in (32, 64)
    for name in ("div_s", "rem_s")
}

_EMPTY: frozenset[int] = frozenset()
ARITY = {code: len(types[0]) for code, types in op.NUMERIC_SIGNATURES.items()}


def _union_deps(operands: Sequence[Operand]) -> frozenset[int]:
    """The locals any of ``operands`` reads (most read none or one: no new set then)."""
    if len(operands) != 2:
        return operands[0].deps if len(operands) == 1 else _EMPTY.union(*(o.deps for o in operands))
    first, second = operands[0].deps, operands[1].deps
    if not second or first == second:
        return first
    return first | second if first else second


_NO_ALIASES: Mapping[int, int] = MappingProxyType({})
_NOT_CONST = object()

FUNC, BLOCK, LOOP, IF = "function", "block", "loop", "if"


class Operand:
    """A compile-time stack slot: a Python expression and the locals it reads."""

    __slots__ = ("cond", "const", "deps", "expr", "lanes", "raw_lanes", "ring")

    def __init__(
        self,
        expr: str,
        deps: frozenset[int] = _EMPTY,
        const: object = _NOT_CONST,
        cond: str | None = None,
        ring: tuple[int, str] | None = None,
        lanes: tuple[str, ...] | None = None,
        raw_lanes: tuple[str, ...] | None = None,
    ) -> None:
        self.expr = expr
        self.deps = deps
        self.const = const
        self.cond = cond  # a Python bool expression equal to (expr != 0), when cheaper
        # (bits, the expression before its wrap-around mask), for operators.RING results
        self.ring = ring
        # A v128's four i32 lanes, each an expression, in lane mode (``simd_lowering``);
        # ``expr`` is then their packed form. ``raw_lanes``: after i32x4 add, sub or mul, the
        # lanes before their wrap-around mask, for a consumer that wraps anyway.
        self.lanes = lanes
        self.raw_lanes = raw_lanes

    def unmasked(self, bits: int) -> str:
        """The operand for an operation that wraps at ``bits`` anyway (see operators.RING)."""
        ring = self.ring
        if ring is not None and ring[0] == bits:
            return f"({ring[1]})"
        return self.wrapped()

    @property
    def atomic(self) -> bool:
        e = self.expr
        return e.isidentifier() or e.isdigit()

    def wrapped(self) -> str:
        return self.expr if self.atomic else f"({self.expr})"

    def condition(self) -> str:
        return self.cond if self.cond is not None else self.expr


class OperandStack(list[Operand]):
    """The compile-time operand stack, with a height ``clean`` below which no operand reads a
    local (nothing there needs evaluating before a ``local.set`` or at a block boundary).

    Operands below ``clean`` only ever leave through ``pop`` and ``truncate`` (the compiler
    removes operands no other way), which lower ``clean`` to the new height, so the mark stays
    true whatever pushes follow. Code that scans for lazy operands starts at the mark:
    scanning from the bottom would make a deep stack (or deep nesting with a value on the
    stack at every level) cost quadratic time.
    """

    __slots__ = ("clean",)

    def __init__(self) -> None:
        super().__init__()
        self.clean = 0

    # Most instructions pop: ``list.pop(self)``, not ``super()``, and ``truncate`` rather than
    # an override of ``__delitem__`` (measured: 130 ns more than a plain pop, against 400 and
    # 600 ns more).
    def pop(self, index: SupportsIndex = -1) -> Operand:
        value = list.pop(self, index)
        if index != -1:
            self.clean = 0  # not used by the compiler; positions above ``index`` moved
        elif len(self) < self.clean:
            self.clean = len(self)
        return value

    def truncate(self, height: int) -> None:
        """Remove the operands from ``height`` up."""
        del self[height:]
        if height < self.clean:
            self.clean = height

    def take(self, count: int) -> list[Operand]:
        """Remove the top ``count`` operands (all, if fewer) and return them."""
        values = self[-count:]
        del self[-count:]
        if len(self) < self.clean:
            self.clean = len(self)
        return values


class Frame:
    __slots__ = (
        "branched",
        "escapes",
        "exit_aliases",
        "fuel_join",
        "fuel_paid",
        "has_while",
        "height",
        "id",
        "if_indent",
        "kind",
        "level",
        "param_operands",
        "params",
        "pending_then",
        "plain_exits",
        "results",
        "seen_else",
        "start",
        "targeted",
        "then_reachable",
        "unreachable",
        "vars",
    )

    def __init__(
        self, kind: str, ident: int, params: tuple[ValType, ...], results: tuple[ValType, ...]
    ) -> None:
        self.kind = kind
        self.id = ident
        self.params = params
        self.results = results
        self.height = 0
        # Only what a frame of its kind needs is made for it: a function nesting 40,000 blocks
        # has that many frames alive, and every container more is work for the collector.
        self.vars: Sequence[str] = ()
        self.has_while = False
        self.targeted = False
        self.branched = False
        self.unreachable = False
        self.level: Frame = self  # innermost enclosing while-loop (or the function)
        self.escapes: set[int]  # a while-loop's only: set by ``_loop``
        self.if_indent = 0
        self.fuel_paid: IfCharge | None = None
        self.plain_exits = False  # reached by a while's plain `break`, with `_t` left at 0
        # Paid for the chain after this block's end by the one branch that leads there.
        self.fuel_join: Sequence[int] = ()
        self.seen_else = False
        self.then_reachable = False
        self.pending_then: set[int]  # an if's, once its else starts: set by ``_else``
        self.param_operands: Sequence[Operand] = ()
        self.start = -1  # index of the opening instruction
        self.exit_aliases: Mapping[int, int] = _NO_ALIASES  # loops: see _prescan

    @property
    def label_arity(self) -> int:
        return len(self.params) if self.kind == LOOP else len(self.results)


class NestingTooDeep(CompileError):
    """The generated Python would indent or nest loops deeper than CPython allows.

    ``at_once``: the function's nesting alone said so, before any code was made."""

    def __init__(self, message: str, at_once: bool = False) -> None:
        super().__init__(message)
        self.at_once = at_once


class Suite:
    """A run of Python statements at one indentation (a function body, loop or if arm)."""

    __slots__ = (
        "chain",
        "chain_pending",
        "guard_open",
        "has_lines",
        "indent",
        "pending",
        "region_of",
    )

    def __init__(self, indent: int, region_of: Frame | None = None) -> None:
        self.indent = indent
        self.pending: set[int] = set()  # label ids ``_t`` may hold here
        self.guard_open = False
        self.has_lines = False
        # The block whose end closes this suite, when it is the body of an ``if _t == N:``
        # (the code after a label that only branches reach; see ``_enter_label``).
        self.region_of = region_of
        # For a region chained with ``elif``: labels the earlier regions of the chain may have
        # left in ``_t`` (their code ran, so the rest of the chain will not be tested).
        self.chain_pending: set[int] = set()
        self.chain = 1  # its place in the ``elif`` chain


class Shape(NamedTuple):
    """What ``_prescan`` finds in a function body."""

    targeted: set[int]  # the block/loop/if instructions some branch targets
    aliases: dict[int, dict[int, int]]  # loop -> its exit aliases (see ``_prescan``)
    depth: int  # how deeply ifs and loops nest (each may indent the Python code)
    loops: int  # how deeply loops alone nest


def _prescan(body: Sequence[Instr], module: Module) -> Shape:
    """Find which block/loop/if instructions some branch targets, loop exit aliases, and how
    deeply ifs and loops nest.

    A loop's exit aliases are the result-less blocks and ifs whose ``end`` directly follows
    the loop's ``end``: a branch from the loop's own ``while`` to one of them is a plain
    ``break``. Both maps are keyed by instruction index; a loop's aliases map to how many
    ``end``s there are from its own (excluded) to theirs (included).
    """
    targeted: set[int] = set()
    aliases: dict[int, dict[int, int]] = {}
    open_at: list[int] = [-1]
    indents = loops = deepest = deepest_loops = 0
    for index, instr in enumerate(body):
        code = instr.op
        if code in (op.BLOCK, op.LOOP, op.IF):
            open_at.append(index)
            if code != op.BLOCK:
                indents += 1
                if indents > deepest:
                    deepest = indents
                if code == op.LOOP:
                    loops += 1
                    if loops > deepest_loops:
                        deepest_loops = loops
        elif code == op.END:
            start = open_at.pop()
            if start >= 0 and body[start].op != op.BLOCK:
                indents -= 1
            if start >= 0 and body[start].op == op.LOOP:
                loops -= 1
                found: dict[int, int] = {}
                depth = len(open_at) - 1
                follow = index + 1
                while follow < len(body) and body[follow].op == op.END and depth >= 1:
                    enclosing = open_at[depth]
                    kind = body[enclosing].op
                    if kind == op.LOOP or module.block_type(body[enclosing].arg).results:
                        break
                    found[enclosing] = follow - index
                    depth -= 1
                    follow += 1
                aliases[start] = found
        elif code in (op.BR, op.BR_IF):
            targeted.add(open_at[-1 - instr.arg])
        elif code == op.BR_TABLE:
            labels, default = instr.arg
            for depth in (*labels, default):
                targeted.add(open_at[-1 - depth])
    return Shape(targeted, aliases, deepest, deepest_loops)


def _float_literal(value: float, defaults: dict[str, str], bits: int, double: bool) -> str:
    """A Python literal for a float constant; NaNs become default arguments built from bits."""
    if value != value:
        name = f"k{len(defaults)}"
        defaults[name] = f"{'F64_FROM_BITS' if double else 'F32_FROM_BITS'}({bits:#x})"
        return name
    if value == float("inf"):
        return "1e999"
    if value == float("-inf"):
        return "-1e999"
    return repr(value)


def zero(valtype: ValType) -> str:
    """The literal a local of ``valtype`` starts as."""
    if valtype in (ValType.I32, ValType.I64, ValType.V128):
        return "0"
    return "0.0" if valtype.is_num else "None"


class ModuleInfo:
    """What compiling a function needs to know about the rest of the module."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.func_types = module.func_types()
        self.global_types = module.global_types()
        imported_globals = len(module.global_types()) - len(module.globals)
        exported_globals = {e.index for e in module.exports if e.kind == 3}
        # Globals shared with other instances live in cells; the rest are namespace variables.
        self.global_in_cell = [
            i < imported_globals or i in exported_globals for i in range(len(self.global_types))
        ]


class FunctionCompiler:
    def __init__(
        self,
        info: ModuleInfo,
        func_index: int,
        fuel: bool = False,
        fuel_shortcuts: bool = True,
        regions: bool = True,
    ) -> None:
        module = info.module
        self.info = info
        self.func_index = func_index
        defined = module.functions[func_index - (len(info.func_types) - len(module.functions))]
        self.body = defined.body
        self.type: FuncType = info.func_types[func_index]
        self.declared_locals = defined.locals
        self.read_locals: set[int] = set()  # the locals some reachable ``local.get`` reads
        self.local_operands: dict[int, Operand] = {}  # what ``local.get`` pushes, per local
        self.const_operands: dict[int, Operand] = {}  # what an integer constant pushes
        self.out: list[str] = []
        self.suites: list[Suite] = [Suite(1)]
        self.frames: list[Frame] = []
        self.stack = OperandStack()
        self.temps = 0
        self.next_label = 1
        self.uses_t = False
        self.assigned_globals: set[int] = set()
        self.defaults: dict[str, str] = {}
        self.fuel = fuel
        self.cost = 0  # instructions of the current basic block not yet charged
        # A function entry or loop head whose check waits for its block's cost: (line, text).
        self.open_check: tuple[int, str] | None = None
        self.fuel_plan = FuelPlan(self.body, fuel_shortcuts) if fuel else None
        # Metered bulk operations also pay for their length (``fuel``): one more argument.
        self.pay_bytes, self.pay_elements, self.pay_pages = (
            (", PAY_BYTES", ", PAY_ELEMENTS", ", PAY_PAGES") if fuel else ("", "", "")
        )
        self.if_charges: dict[int, IfCharge] = self.fuel_plan.ifs if self.fuel_plan else {}
        self.discount = 0  # already paid of the block being counted (see ``fuelplan``)
        # Charges of the blocks ahead already paid (``fuelplan``), the next one last, and their
        # total (kept as it goes: summing the list at each block is quadratic on long chains).
        self.chain: list[int] = []
        self.chain_total = 0
        self.refund = 0  # what a taken forward br_if gives back of the chain
        self.while_depth = 0
        self.aliases: dict[int, dict[int, int]] = {}
        self._index = 0
        # Where the last label region ended: (len(self.out) then, its indent, labels it may
        # have left in ``_t``); an ``elif`` may follow it directly.
        self.region_closed: tuple[int, int, set[int], int] | None = None
        self.regions = regions
        self.source = ""  # what ``compile`` made
        # i32x4 lanes (``simd_lowering.lane_mode``): v128 locals are then four int locals each.
        self.lane_mode = False
        self._split: dict[int, bool] = {}
        # Split locals last set to a constant in this stretch of code: their reads give the
        # constant (forgotten where control flow may join: ``_forget_lane_constants``).
        self.lane_constants: set[int] = set()
        # Of those, the ones whose lane locals are not set yet: a constant set again before
        # any control instruction was never needed (clang sets a mask or a zero into a local
        # on every turn of a loop), and the others are set at the next control instruction.
        self.pending_lanes: dict[int, tuple[str, ...]] = {}

    # --- emission ---------------------------------------------------------------------------

    @property
    def suite(self) -> Suite:
        return self.suites[-1]

    def _begin_statement(self) -> int:
        """Open a guard if a label may be pending here; return the statement's indentation."""
        s = self.suite
        if s.pending and not s.guard_open:
            self._raw(s.indent, "if not _t:")
            s.guard_open = True
        s.has_lines = True
        indent = s.indent + (1 if s.guard_open else 0)
        if indent > MAX_INDENT:
            raise NestingTooDeep(f"function {self.func_index} nests too deeply for the compiler")
        return indent

    def _raw(self, indent: int, text: str) -> None:
        self.out.append("    " * indent + text)

    def _line(self, text: str) -> None:
        self._raw(self._begin_statement(), text)

    def _lines(self, lines: list[str], extra_indent: int = 0) -> None:
        indent = self._begin_statement() + extra_indent
        for text in lines:
            self._raw(indent, text)

    def _reset_label(self, ident: int) -> None:
        """At a label's end: stop skipping if ``_t`` was this label."""
        s = self.suite
        if ident not in s.pending:
            return
        s.guard_open = False
        s.has_lines = True
        if s.pending == {ident}:
            self._raw(s.indent, "_t = 0")
        else:
            self._raw(s.indent, f"if _t == {ident}: _t = 0")
        s.pending.discard(ident)

    def _enter_label(self, frame: Frame, parent: Frame | None) -> None:
        """At the end of a block that only branches reach (its code cannot fall through to
        it): the code that follows runs only when ``_t`` holds this label. With other labels
        pending it goes into ``if _t == N:`` -- chained as ``elif`` after the region before,
        so that a ``br_table`` switch tests each case once instead of skipping every case
        body's guard -- until the enclosing block ends."""
        s = self.suite
        ident = frame.id
        if not (
            self.regions
            and s.indent < MAX_REGION_INDENT
            and frame.unreachable
            and not frame.plain_exits
            and ident in s.pending
            and len(s.pending) > 1
            and parent is not None
            and parent.kind == BLOCK
        ):
            self._reset_label(ident)
            return
        s.guard_open = False
        s.has_lines = True
        s.pending.discard(ident)
        closed = self.region_closed
        chain = (
            closed is not None
            and closed[0] == len(self.out)
            and closed[1] == s.indent
            and ident not in closed[2]
            and closed[3] < MAX_ELIF_CHAIN
        )
        self._raw(s.indent, f"{'elif' if chain else 'if'} _t == {ident}:")
        self._raw(s.indent + 1, "_t = 0")
        region = Suite(s.indent + 1, region_of=parent)
        region.has_lines = True
        if chain and closed is not None:
            region.chain_pending = closed[2]
            region.chain = closed[3] + 1
        self.suites.append(region)

    def _close_region(self, frame: Frame) -> None:
        """At a block's end: close the label regions it owns (one per child block that ended
        into a region; later ones nest in earlier ones)."""
        while self.suite.region_of is frame:
            region = self.suites.pop()
            left = region.chain_pending | region.pending
            self.region_closed = (len(self.out), region.indent - 1, left, region.chain)
            self._absorb_pending(region.pending)

    def _absorb_pending(self, labels: set[int]) -> None:
        if labels:
            self.suite.pending |= labels
            self.suite.guard_open = False

    # --- operands -----------------------------------------------------------------------------

    def _temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def _evaluate(self, operand: Operand) -> Operand:
        """Evaluate an operand into a temporary now (unless it is already a constant or temp);
        an operand with lanes into a temporary per lane."""
        if operand.lanes is not None:
            lanes = self._evaluate_lanes(operand.lanes)
            return Operand(packed(lanes), lanes=lanes)
        if not operand.deps and operand.atomic:
            return operand
        name = self._temp()
        self._line(f"{name} = {operand.expr}")
        return Operand(name)

    def _evaluate_lanes(self, lanes: Sequence[str]) -> tuple[str, ...]:
        """Lanes as temporaries or numbers (any other lane evaluated now, in lane order)."""
        names = []
        for lane in lanes:
            if not (lane.isdigit() or (lane[0] == "t" and lane[1:].isdigit())):
                name = self._temp()
                self._line(f"{name} = {lane}")
                lane = name
            names.append(lane)
        return tuple(names)

    def _atomic(self, operand: Operand) -> Operand:
        """The operand as a name or number, evaluated into a temporary if it is neither (an
        expression that reads it more than once then computes it once)."""
        if operand.atomic:
            return operand
        if operand.lanes is not None:  # packed once, its lanes kept as temporaries
            lanes = self._evaluate_lanes(operand.lanes)
            name = self._temp()
            self._line(f"{name} = {packed(lanes)}")
            return Operand(name, lanes=lanes)
        return self._evaluate(operand)

    def _next_sets_local(self) -> bool:
        """Whether the next instruction stores the top of the stack into a local.

        Then a value that must be evaluated in place can go straight into that local: nothing
        runs between its evaluation and the store except pure operands being evaluated.
        """
        following = self._index + 1
        return following < len(self.body) and self.body[following].op in (
            op.LOCAL_SET,
            op.LOCAL_TEE,
        )

    def _push_value(self, expr: str, deps: frozenset[int], may_trap: bool = False) -> None:
        if may_trap and len(expr) <= MAX_LAZY_EXPR and self._next_sets_local():
            self.stack.append(Operand(expr))
        elif may_trap or len(expr) > MAX_LAZY_EXPR:
            name = self._temp()
            self._line(f"{name} = {expr}")
            self.stack.append(Operand(name))
        else:
            self.stack.append(Operand(expr, deps))

    def _push_cond(self, cond: str, deps: frozenset[int]) -> None:
        if len(cond) > MAX_LAZY_EXPR:
            name = self._temp()
            self._line(f"{name} = 1 if {cond} else 0")
            self.stack.append(Operand(name))
        else:
            self.stack.append(Operand(f"1 if {cond} else 0", deps, cond=cond))

    def _pop(self, count: int) -> list[Operand]:
        if count == 0:
            return []
        return self.stack.take(count)

    def _flush_local(self, index: int) -> None:
        """Before ``local.set index``: evaluate the lazy slots that read the local."""
        stack = self.stack
        if len(stack) - stack.clean > MAX_UNSETTLED:
            self._settle_stack()
            return
        for i in range(stack.clean, len(stack)):
            operand = stack[i]
            if index in operand.deps:
                stack[i] = self._evaluate(operand)

    def _settle_stack(self) -> None:
        """Before control flow splits or repeats, no lazy slot may read a local."""
        stack = self.stack
        for i in range(stack.clean, len(stack)):
            operand = stack[i]
            if operand.deps:
                stack[i] = self._evaluate(operand)
        stack.clean = len(stack)

    # --- frames and branches ----------------------------------------------------------------------

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    def _level(self) -> Frame:
        """The innermost open ``while`` loop, or the function (each frame knows its parent's,
        so this takes the same time at any nesting depth)."""
        top = self.frames[-1]
        return top if top.kind == FUNC or (top.kind == LOOP and top.has_while) else top.level

    def _new_frame(self, kind: str, functype: FuncType, targeted: bool) -> Frame:
        frame = Frame(kind, self.next_label, functype.params, functype.results)
        self.next_label += 1
        frame.targeted = targeted
        frame.level = self._level()
        frame.start = self._index
        frame.exit_aliases = self.aliases.get(self._index, _NO_ALIASES)
        return frame

    def _assign(self, names: Sequence[str], values: Sequence[Operand]) -> str:
        """One statement giving ``names`` the ``values`` (all evaluated before any is set)."""
        pairs = [(name, v.expr) for name, v in zip(names, values, strict=True) if name != v.expr]
        if not pairs:
            return "pass"  # e.g. a loop's parameter carried back unchanged
        return f"{', '.join(n for n, _ in pairs)} = {', '.join(e for _, e in pairs)}"

    def _return_lines(self, values: list[Operand]) -> list[str]:
        if not values:
            line = "return"
        elif len(values) == 1:
            line = f"return {values[0].expr}"
        else:
            line = f"return ({', '.join(v.expr for v in values)},)"
        return [line]

    def _open_check(self, text: str) -> None:
        """Emit a fuel check whose charge is filled in when the block it opens ends.

        ``text`` has a ``{}`` for the charge: the entry check and the loop condition then
        subtract the first block's cost and test the counter in one expression.
        """
        self.open_check = (len(self.out) - 1, text)

    def _charge(self) -> None:
        """With fuel metering: charge the basic block that ends here (one unit per instruction).

        The counter ``FUEL`` is a closure cell shared by every function of the instance, so
        calls need no bookkeeping. It is tested at function entries and loop heads, where the
        first block's cost is subtracted by the test itself.
        """
        if not self.fuel:
            return
        cost = self.cost - self.discount
        plan = self.fuel_plan
        assert plan is not None
        if self.chain:
            paid = self.chain.pop()
            cost -= paid
            self.chain_total -= paid
            self.refund = self.chain_total
        elif self._index in plan.forward and self.body[self._index].op == op.BR_IF:
            self.chain = plan.chain_from(self._index + 1)[::-1]
            self.refund = self.chain_total = sum(self.chain)
            cost += self.refund
        else:
            self.refund = 0
        check = self.open_check
        if check is not None:
            line, text = check
            self.out[line] = self.out[line].replace("@FUEL@", text.format(cost))
            self.open_check = None
        elif cost and not self.frame.unreachable:
            self._line(f"FUEL -= {cost}")
        self.cost = self.discount = 0

    def _jump(self, target: Frame, values: list[Operand]) -> tuple[list[str], set[int]]:
        """Lines that branch to ``target``'s label, and the labels they leave pending here."""
        if target.kind == FUNC:
            return self._return_lines(values), set()
        target.branched = True
        lines = [self._assign(target.vars, values)] if values else []
        current = self._level()
        if target.kind == LOOP and target is current:
            lines.append("continue")
            return lines, set()
        if current.kind == LOOP and target.start in current.exit_aliases:
            target.plain_exits = True
            lines.append("break")  # the while's end is the label's end
            return lines, set()
        stop = target if target.kind == LOOP else target.level
        if stop is current:
            self.uses_t = True
            lines.append(f"_t = {target.id}")
            return lines, {target.id}
        self.uses_t = True
        while current is not stop:  # the ``while`` loops the branch leaves, innermost first
            current.escapes.add(target.id)
            current = current.level
        lines += [f"_t = {target.id}", "break"]
        return lines, set()

    def _label_values(self, target: Frame) -> list[Operand]:
        arity = target.label_arity
        return self.stack[len(self.stack) - arity :] if arity else []

    # --- the walk ---------------------------------------------------------------------------------

    def compile(self) -> str:
        body = self.body
        targeted, aliases, depth, loops = _prescan(body, self.info.module)
        if depth > self.max_depth or loops > self.max_loops:
            raise NestingTooDeep(f"function {self.func_index} nests too deeply", at_once=True)
        self.aliases = aliases
        if self.vector_lanes and any(t is ValType.V128 for _, t in self.declared_locals.runs):
            self.lane_mode = lane_mode(body)
        function = Frame(FUNC, 0, (), self.type.results)
        self.frames.append(function)
        module = self.info.module
        self._enter_function()
        dead_depth = 0
        out = self.out
        cut_at = self.cut_after  # past this many lines, ``_cut`` is asked for a cut
        cutting = cut_at < sys.maxsize
        for index, instr in enumerate(body):
            code = instr.op
            frame = self.frames[-1]
            if frame.unreachable:
                # Skip dead code, but follow its nesting to find this frame's else/end.
                if code in (op.BLOCK, op.LOOP, op.IF):
                    dead_depth += 1
                    continue
                if code == op.END and dead_depth:
                    dead_depth -= 1
                    continue
                if code not in (op.END, op.ELSE) or dead_depth:
                    continue
            try:
                self._index = index
                self.cost += 1
                DISPATCH.get(code, _other)(self, instr, index in targeted, module)
            except CompileError:
                raise
            except (
                IndexError,
                KeyError,
                TypeError,
                ValueError,
            ) as exc:  # pragma: no cover - validator's job
                raise CompileError(
                    f"function {self.func_index}: cannot compile {op.NAMES.get(code, hex(code))} "
                    f"at offset {instr.offset:#x} ({exc})"
                ) from exc
            if cutting and len(out) > cut_at:
                cut_at = self._cut()
        self.source = self._assemble()
        return self.source

    cut_after = sys.maxsize
    """Lines of output after which ``_cut`` is called (between two instructions)."""

    vector_lanes = True
    """Whether a function doing i32x4 arithmetic may keep vectors as lanes (``lane_mode``)."""

    max_depth = DEEP_NESTING
    """Functions whose ifs and loops nest deeper cannot be compiled this way; those whose loops
    nest deeper than ``max_loops`` neither (``NestingTooDeep`` before any work)."""
    max_loops = MAX_WHILE_NESTING

    def _cut(self) -> int:  # pragma: no cover - only lowerings that cut call it
        """Between two instructions, once the output is longer than ``cut_after`` lines (or
        than what the last call returned): a lowering that splits long code cuts it here.
        Returns the length of output past which to call again."""
        return sys.maxsize

    def code(self) -> CodeType:
        """The compiled source (``compile`` first): executed in an instance's namespace, it
        defines the function (or its fuel maker)."""
        return builtins.compile(self.source, f"{COMPILED_FILENAME} {self.func_index}>", "exec")

    def _enter_function(self) -> None:
        if self.fuel:
            self._fuel_check()

    def _fuel_check(self) -> None:
        """A fuel check at a function entry (or, flattened, a loop head): it subtracts the
        cost of the block it opens, filled in when that block ends."""
        self._raw(self.suite.indent, "@FUEL@")
        self._open_check("if (FUEL := FUEL - {}) < 0: REFUEL()")

    def _assemble(self) -> str:
        return self._wrap(self._header() + self.out)

    def _header(self) -> list[str]:
        """The ``def`` line and the statements that set the function's variables up."""
        params = [f"l{i}" for i in range(len(self.type.params))]
        params += [f"{name}={value}" for name, value in self.defaults.items()]
        header = [f"def f{self.func_index}({', '.join(params)}):"]
        if self.assigned_globals:
            header.append("    global " + ", ".join(f"g{i}" for i in sorted(self.assigned_globals)))
        # Only the declared locals that are read need their zero: a function may declare
        # 50,000 locals in a few bytes, and the source must stay proportional to the body.
        first = len(self.type.params)
        for i in sorted(x for x in self.read_locals if x >= first):
            if self._is_split(i):
                header.append(f"    l{i}_0 = l{i}_1 = l{i}_2 = l{i}_3 = 0")
            else:
                header.append(f"    l{i} = {zero(self.declared_locals[i - first])}")
        if self.uses_t:
            header.append("    _t = 0")
        if self.open_check is not None:  # pragma: no cover - every body ends with `end`
            self._charge()
        return header

    def _wrap(self, lines: list[str], name: str = "") -> str:
        """The source: the function ``name`` (default: this one's), inside its fuel maker
        ``_fuel_<name>`` when metered."""
        name = name or f"f{self.func_index}"
        if len(lines) == 1:
            lines.append("    pass")
        if self.fuel:
            # The function is made inside a maker so that FUEL is a closure variable; the
            # instance rebinds it to the one cell all its functions share (``Instance``).
            lines.insert(1, "    nonlocal FUEL")
            lines = [
                f"def _fuel_{name}():",
                f"    global {name}  # its recursive calls must not bind to the maker",
                "    FUEL = 0",
                *("    " + line for line in lines),
                f"    return {name}",
            ]
        return "\n".join(lines) + "\n"

    # --- one handler per kind of instruction (``DISPATCH`` maps opcodes to them) -------------

    def _local_get(self, instr: Instr, targeted: bool, module: Module) -> None:
        # Operands are never changed once made, so one per local serves every read of it.
        operand = self.local_operands.get(instr.arg)
        if operand is None:
            self.read_locals.add(instr.arg)
            operand = self.local_operands[instr.arg] = self._local_operand(instr.arg)
        self.stack.append(operand)

    def _local_operand(self, index: int) -> Operand:
        if self._is_split(index):
            lanes = tuple(f"l{index}_{k}" for k in range(4))
            return Operand(packed(lanes), frozenset((index,)), lanes=lanes)
        return Operand(f"l{index}", frozenset((index,)))

    def _is_split(self, index: int) -> bool:
        """Whether local ``index`` is a v128 kept as four lane locals ``l<index>_<k>``."""
        if not self.lane_mode:
            return False
        split = self._split.get(index)
        if split is None:
            first = len(self.type.params)
            split = index >= first and self.declared_locals[index - first] is ValType.V128
            self._split[index] = split
        return split

    def _local_set(self, instr: Instr, targeted: bool, module: Module) -> None:
        arg = instr.arg
        value = self.stack.pop()
        self._flush_local(arg)
        if self._is_split(arg):
            self._set_lanes(arg, value)
        elif value.expr != f"l{arg}":  # a local set to itself (clang leaves some) is no work
            self._line(f"l{arg} = {value.expr}")
        if instr.op == op.LOCAL_TEE:
            constant = value.lanes is not None and all(lane.isdigit() for lane in value.lanes)
            # A constant vector stays one for what reads it now (a shuffle with zeros, a mask).
            self.stack.append(value if constant else self._local_operand(arg))

    def _set_lanes(self, index: int, value: Operand) -> None:
        """``local.set`` of a v128 kept as lanes: each lane local takes its lane."""
        lanes = value.lanes
        if lanes is None:
            lanes = unpacked(self._atomic(value).expr)
        if all(lane.isdigit() for lane in lanes):
            self.local_operands[index] = Operand(packed(lanes), lanes=lanes)
            self.lane_constants.add(index)
            self.pending_lanes[index] = lanes
            return
        self.pending_lanes.pop(index, None)  # overwritten before anything could read it
        if index in self.lane_constants:
            self.lane_constants.discard(index)
            del self.local_operands[index]  # the next read makes it (and counts the read)
        pairs = [(f"l{index}_{k}", lane) for k, lane in enumerate(lanes) if lane != f"l{index}_{k}"]
        if not pairs:
            return
        crossed = index in value.deps and any(
            reads != str(k)
            for k, (_, lane) in enumerate(pairs)
            for reads in re.findall(rf"\bl{index}_(\d)", lane)
        )
        if crossed and len(pairs) > 1:  # a lane reads another lane of the local: all, then set
            names = ", ".join(name for name, _ in pairs)
            self._line(f"{names} = {', '.join(lane for _, lane in pairs)}")
        else:
            for name, lane in pairs:
                self._line(f"{name} = {lane}")

    def _set_pending_lanes(self) -> None:
        """Before control flow leaves this stretch of code: the constants not set yet."""
        pending = self.pending_lanes
        for index, lanes in pending.items():
            for k, lane in enumerate(lanes):
                self._line(f"l{index}_{k} = {lane}")
        pending.clear()

    def _forget_lane_constants(self) -> None:
        """Where control flow may join, a split local's value is no longer known."""
        for index in self.lane_constants:
            del self.local_operands[index]  # the next read makes it (and counts the read)
        self.lane_constants.clear()

    def _int_const(self, instr: Instr, targeted: bool, module: Module) -> None:
        operand = self.const_operands.get(instr.arg)
        if operand is None:
            operand = self.const_operands[instr.arg] = Operand(str(instr.arg), const=instr.arg)
        self.stack.append(operand)

    def _f32_const(self, instr: Instr, targeted: bool, module: Module) -> None:
        single = f32_from_bits(instr.arg)
        literal = _float_literal(single, self.defaults, instr.arg, False)
        self.stack.append(Operand(literal, const=single))

    def _f64_const(self, instr: Instr, targeted: bool, module: Module) -> None:
        double = f64_from_bits(instr.arg)
        literal = _float_literal(double, self.defaults, instr.arg, True)
        self.stack.append(Operand(literal, const=double))

    def _compare(self, instr: Instr, targeted: bool, module: Module) -> None:
        self._comparison(instr.op)

    def _compute(self, instr: Instr, targeted: bool, module: Module) -> None:
        self._numeric(instr.op)

    def _load(self, instr: Instr, targeted: bool, module: Module) -> None:
        address = self.stack.pop()
        expr = LOADS[instr.op].format(a=self._address(address, instr.arg))
        self._push_value(expr, _EMPTY, may_trap=True)

    def _store(self, instr: Instr, targeted: bool, module: Module) -> None:
        value = self.stack.pop()
        address = self.stack.pop()
        address_expr = self._address(address, instr.arg)
        statement = STORES[instr.op]
        narrowed = NARROWED.search(statement)
        if narrowed is not None and isinstance(value.const, int):  # fold the constant's mask
            statement = statement.replace(narrowed[0], str(value.const & int(narrowed[1], 16)))
        self._line(statement.format(a=address_expr, v=value.wrapped()))

    def _call_direct(self, instr: Instr, targeted: bool, module: Module) -> None:
        self._call(f"f{instr.arg}", self.info.func_types[instr.arg])

    def _call_indirect(self, instr: Instr, targeted: bool, module: Module) -> None:
        """The checks inline, the helper only when one fails (to raise the right trap): a
        call of the helper cost about as much as the call it checks."""
        type_index, table = instr.arg
        index = self._atomic(self.stack.pop()).expr  # read three times
        elements, sig = f"E{table}", f"SIG{type_index}"
        found = f"(_f := {elements}[{index}] if {index} < len({elements}) else None)"
        callee = (
            f"(_f.call if {found} is not None and _f.sig == {sig} "
            f"else CALL_INDIRECT({elements}, {index}, {sig}))"
        )
        self._call(callee, module.types[type_index])

    def _drop(self, instr: Instr, targeted: bool, module: Module) -> None:
        self.stack.pop()

    def _select(self, instr: Instr, targeted: bool, module: Module) -> None:
        cond = self.stack.pop()
        second = self.stack.pop()
        first = self.stack.pop()
        self._push_value(
            f"{first.wrapped()} if ({cond.condition()}) else {second.wrapped()}",
            first.deps | second.deps | cond.deps,
        )

    def _nop(self, instr: Instr, targeted: bool, module: Module) -> None:
        pass

    def _rest(self, instr: Instr, targeted: bool, module: Module) -> None:
        self._other(instr)

    def _address(self, address: Operand, memarg: tuple[int, int]) -> str:
        offset = memarg[1]
        if offset == 0:
            return address.expr
        if isinstance(address.const, int):
            return str(address.const + offset)
        return f"{address.wrapped()} + {offset}"

    def _comparison(self, code: int) -> None:
        template = COND[code]
        arity = ARITY[code]
        operands = self.stack.take(arity)
        deps = _union_deps(operands)
        if arity == 1:  # eqz: negate a condition directly when there is one
            (a,) = operands
            cond = f"not ({a.cond})" if a.cond is not None else f"{a.wrapped()} == 0"
            self._push_cond(cond, deps)
            return
        a, b = operands
        if "{S0}" in template:
            cond = self._signed_comparison(template.split()[1], a, b, code)
        else:
            cond = template.format(a.wrapped(), b.wrapped())
        self._push_cond(cond, deps)

    def _signed_comparison(self, sym: str, a: Operand, b: Operand, code: int) -> str:
        bits = 32 if op.NAMES[code].startswith("i32") else 64
        a_const = a.const if isinstance(a.const, int) else None
        b_const = b.const if isinstance(b.const, int) else None
        args = (sym, a.wrapped(), b.wrapped(), a_const, b_const, bits)
        cond = wrapping.signed_compare(*args)
        if cond is None:  # both variables, each read twice: make them atomic (a before b)
            a, b = self._atomic(a), self._atomic(b)
            cond = wrapping.signed_compare(sym, a.expr, b.expr, None, None, bits)
            assert cond is not None
        return cond

    def _numeric(self, code: int) -> None:
        template = VALUE[code]
        arity = ARITY[code]
        operands = self.stack.take(arity)
        deps = _union_deps(operands)
        may_trap = code in MAY_TRAP
        if may_trap and arity == 2 and template in ("{0} // {1}", "{0} % {1}"):
            # Unsigned division by a non-zero constant cannot trap.
            divisor = operands[1].const
            may_trap = divisor is _NOT_CONST or divisor == 0
        for i in REREAD.get(code, ()):  # e.g. a divisor, or a value whose sign is tested
            operands[i] = self._atomic(operands[i])  # read more than once
        count = operands[1].const if code in SHIFT_COUNTS else None
        if isinstance(count, int):  # a constant count: reduce it now
            bits, masked_count = SHIFT_COUNTS[code]
            count &= bits - 1
            template = template.replace(masked_count, str(count))
            if code in SIGNED_SHIFTS:
                a = self._atomic(operands[0])  # read up to three times
                self._push_value(wrapping.shift_right_signed(a.expr, count, bits), deps)
                return
        divisor = operands[1].const if code in SIGNED_DIVISIONS else None
        if isinstance(divisor, int) and 0 < divisor < 1 << (SIGNED_DIVISIONS[code][0] - 1):
            bits, remainder = SIGNED_DIVISIONS[code]
            a = self._atomic(operands[0])  # read up to four times
            self._push_value(wrapping.divide_signed(a.expr, divisor, bits, remainder), deps)
            return
        ring = RING.get(code)
        if ring is not None:
            self._ring_operation(code, ring, operands, deps, count)
            return
        expr = template.format(*(o.wrapped() for o in operands))
        self._push_value(expr, deps, may_trap)

    def _ring_operation(
        self,
        code: int,
        ring: tuple[int, str],
        operands: list[Operand],
        deps: frozenset[int],
        count: object,
    ) -> None:
        """add, sub, mul, shl: the raw result stays at hand for a consumer that wraps anyway
        (see ``Operand.ring``); the value itself is wrapped by a comparison where the operands
        are canonical (``wrapping``), else by a mask."""
        bits, raw_template = ring
        a, b = operands
        first = a.unmasked(bits)
        a_text, b_text = a.wrapped(), b.wrapped()
        if isinstance(count, int):
            second = str(count)
            raw_template = raw_template.replace(SHIFT_COUNTS[code][1], second)
        else:
            second = b_text if code in SHIFTS else b.unmasked(bits)
        raw = raw_template.format(first, second)
        canonical = first == a_text and (code in SHIFTS or second == b_text)
        if canonical and code in SUMS:
            adding = "+" in raw_template
            if adding and a.const is not _NOT_CONST and b.const is _NOT_CONST:
                a, b = b, a  # constant second: adding a large one becomes a subtraction
                a_text, b_text = b_text, a_text
            if adding:
                b_const = b.const if isinstance(b.const, int) else None
                expr = wrapping.add(a_text, b_text, b_const, bits)
            else:
                expr = wrapping.subtract(a_text, b_text, bits)
        elif canonical and isinstance(count, int):
            expr = wrapping.shift_left(first, count, bits)
        else:
            expr = f"({raw}) & {M32 if bits == 32 else M64}"
        if len(expr) <= MAX_LAZY_EXPR:
            self.stack.append(Operand(expr, deps, ring=(bits, raw)))
        else:
            self._push_value(expr, deps)

    def _call(self, callee: str, functype: FuncType) -> None:
        args = self._pop(len(functype.params))
        call = f"{callee}({', '.join(a.expr for a in args)})"
        results = len(functype.results)
        if results == 0:
            self._line(call)
        elif results == 1 and self._next_sets_local():
            self.stack.append(Operand(call))
        elif results == 1:
            name = self._temp()
            self._line(f"{name} = {call}")
            self.stack.append(Operand(name))
        else:
            names = [self._temp() for _ in range(results)]
            self._line(f"{', '.join(names)} = {call}")
            self.stack.extend(Operand(n) for n in names)

    def _other(self, instr: Instr) -> None:
        code = instr.op
        arg = instr.arg
        stack = self.stack
        if code == op.GLOBAL_GET:
            index: int = arg
            name = f"G{index}.value" if self.info.global_in_cell[index] else f"g{index}"
            if self.info.global_types[index].mutable:
                self._push_value(name, _EMPTY, may_trap=True)
            else:
                stack.append(Operand(name) if "." not in name else Operand(f"({name})"))
        elif code == op.GLOBAL_SET:
            index = arg
            value = stack.pop()
            if self.info.global_in_cell[index]:
                self._line(f"G{index}.value = {value.expr}")
            else:
                self.assigned_globals.add(index)
                self._line(f"g{index} = {value.expr}")
        elif code == op.MEMORY_SIZE:
            self._push_value("len(M) >> 16", _EMPTY, may_trap=True)
        elif code == op.MEMORY_GROW:
            delta = stack.pop()
            self._push_value(
                f"MEMORY_GROW({delta.expr}{self.pay_pages}) & 0xFFFFFFFF", _EMPTY, may_trap=True
            )
        elif code == op.REF_NULL:
            stack.append(Operand("None"))
        elif code == op.REF_IS_NULL:
            value = stack.pop()
            self._push_cond(f"{value.wrapped()} is None", value.deps)
        elif code == op.REF_FUNC:
            stack.append(Operand(f"FN[{arg}]"))
        elif code == op.TABLE_GET:
            index_op = stack.pop()
            self._push_value(f"TABLE_GET(E{arg}, {index_op.expr})", _EMPTY, may_trap=True)
        elif code == op.TABLE_SET:
            value = stack.pop()
            index_op = stack.pop()
            self._line(f"TABLE_SET(E{arg}, {index_op.expr}, {value.expr})")
        elif code == op.TABLE_SIZE:
            self._push_value(f"len(E{arg})", _EMPTY, may_trap=True)
        elif code == op.TABLE_GROW:
            delta = stack.pop()
            init = stack.pop()
            self._push_value(
                f"TB{arg}.grow({delta.expr}, {init.expr}{self.pay_elements}) & 0xFFFFFFFF",
                _EMPTY,
                may_trap=True,
            )
        elif code == op.TABLE_FILL:
            n, value, start = stack.pop(), stack.pop(), stack.pop()
            self._line(
                f"TABLE_FILL(E{arg}, {start.expr}, {value.expr}, {n.expr}{self.pay_elements})"
            )
        elif code == op.TABLE_COPY:
            dst_table, src_table = arg
            n, src, dst = stack.pop(), stack.pop(), stack.pop()
            self._line(
                f"TABLE_COPY(E{dst_table}, E{src_table}, {dst.expr}, {src.expr}, {n.expr}"
                f"{self.pay_elements})"
            )
        elif code == op.TABLE_INIT:
            segment, table = arg
            n, src, dst = stack.pop(), stack.pop(), stack.pop()
            self._line(
                f"TABLE_INIT(E{table}, ES[{segment}], {dst.expr}, {src.expr}, {n.expr}"
                f"{self.pay_elements})"
            )
        elif code == op.ELEM_DROP:
            self._line(f"ES[{arg}] = ()")
        elif code == op.MEMORY_INIT:
            segment = arg[0]
            n, src, dst = stack.pop(), stack.pop(), stack.pop()
            self._line(
                f"MEMORY_INIT(M, DS[{segment}], {dst.expr}, {src.expr}, {n.expr}{self.pay_bytes})"
            )
        elif code == op.DATA_DROP:
            self._line(f"DS[{arg}] = b''")
        elif code == op.MEMORY_COPY:
            n, src, dst = stack.pop(), stack.pop(), stack.pop()
            self._line(f"MEMORY_COPY(M, {dst.expr}, {src.expr}, {n.expr}{self.pay_bytes})")
        elif code == op.MEMORY_FILL:
            n, value, dst = stack.pop(), stack.pop(), stack.pop()
            self._line(f"MEMORY_FILL(M, {dst.expr}, {value.expr}, {n.expr}{self.pay_bytes})")
        else:
            raise CompileError(
                f"function {self.func_index}: unsupported instruction {op.NAMES.get(code, hex(code))}"
            )

    # --- control --------------------------------------------------------------------------------

    def _control(self, instr: Instr, targeted: bool, module: Module) -> None:
        code = instr.op
        if self.pending_lanes:
            self._set_pending_lanes()
        if self.lane_constants and code in (op.LOOP, op.ELSE, op.END):
            self._forget_lane_constants()
        stack = self.stack
        if_charge = self.if_charges.get(self._index) if code == op.IF else None
        if if_charge is not None:
            self.cost += if_charge.hoist + if_charge.join
        if code not in (op.BLOCK, op.UNREACHABLE):
            self._charge()  # every other control instruction ends a basic block
        if code == op.BLOCK:
            self._block(instr, targeted, module)
        elif code == op.LOOP:
            self._loop(instr, targeted, module)
        elif code == op.IF:
            self._if(instr, targeted, module, if_charge)
        elif code == op.ELSE:
            self._else()
        elif code == op.END:
            self._end()
        elif code == op.BR:
            target = self.frames[-1 - instr.arg]
            lines, pending = self._jump(target, self._label_values(target))
            self._lines(lines)
            self._absorb_pending(pending)
            self.frame.unreachable = True
        elif code == op.BR_IF:
            cond = stack.pop()
            target = self.frames[-1 - instr.arg]
            lines, pending = self._jump(target, self._label_values(target))
            give_back = self.refund
            after = self.fuel_plan.sole_entry.get(self._index) if self.fuel_plan else None
            if after is not None:
                target.fuel_join = self.fuel_plan.chain_from(after)  # type: ignore[union-attr]
                give_back -= sum(target.fuel_join)
            if give_back > 0:
                lines.insert(0, f"FUEL += {give_back}")
            elif give_back < 0:
                lines.insert(0, f"FUEL -= {-give_back}")
            indent = self._begin_statement()
            self._raw(indent, f"if {cond.condition()}:")
            for text in lines:
                self._raw(indent + 1, text)
            self._absorb_pending(pending)
        elif code == op.BR_TABLE:
            self._br_table(instr)
        elif code == op.RETURN:
            self._lines(self._return_lines(self._pop(len(self.type.results))))
            self.frame.unreachable = True
        elif code == op.UNREACHABLE:
            self._line("UNREACHABLE()")
            self.frame.unreachable = True

    def _block(self, instr: Instr, targeted: bool, module: Module) -> None:
        self._settle_stack()
        frame = self._new_frame(BLOCK, module.block_type(instr.arg), targeted)
        frame.height = len(self.stack) - len(frame.params)
        if targeted:
            frame.vars = [f"b{frame.id}_{i}" for i in range(len(frame.results))]
        self.frames.append(frame)

    def _open_loop(self, instr: Instr, targeted: bool, module: Module) -> Frame:
        """A loop's frame; if a branch targets it, its parameters moved into its variables."""
        self._settle_stack()
        frame = self._new_frame(LOOP, module.block_type(instr.arg), targeted)
        frame.height = len(self.stack) - len(frame.params)
        if targeted:
            frame.vars = [f"b{frame.id}_{i}" for i in range(len(frame.params))]
            params = self._pop(len(frame.params))
            if params:
                self._line(self._assign(frame.vars, params))
        return frame

    def _loop(self, instr: Instr, targeted: bool, module: Module) -> None:
        frame = self._open_loop(instr, targeted, module)
        if targeted:
            frame.has_while = True
            frame.escapes = set()
            indent = self._begin_statement()
            frame.if_indent = indent
            if self.fuel:
                # `while` re-tests its condition on every `continue`; REFUEL returns
                # True when it could top the counter up, and traps otherwise.
                self._raw(indent, "while @FUEL@:")
                self._open_check("(FUEL := FUEL - {}) >= 0 or REFUEL()")
            else:
                self._raw(indent, "while True:")
            self.while_depth += 1
            if self.while_depth > MAX_WHILE_NESTING:
                raise NestingTooDeep(
                    f"function {self.func_index} nests loops too deeply for the compiler"
                )
            self.suites.append(Suite(indent + 1))
            self.stack.extend(Operand(v) for v in frame.vars)
        self.frames.append(frame)

    def _open_if(self, instr: Instr, targeted: bool, module: Module) -> tuple[Frame, Operand]:
        """An if's frame, and its condition."""
        stack = self.stack
        cond = stack.pop()
        self._settle_stack()
        frame = self._new_frame(IF, module.block_type(instr.arg), targeted)
        frame.height = len(stack) - len(frame.params)
        frame.vars = [f"b{frame.id}_{i}" for i in range(len(frame.results))]
        frame.param_operands = stack[frame.height :]
        return frame, cond

    def _if(self, instr: Instr, targeted: bool, module: Module, if_charge: IfCharge | None) -> None:
        frame, cond = self._open_if(instr, targeted, module)
        indent = self._begin_statement()
        self._raw(indent, f"if {cond.condition()}:")
        frame.if_indent = indent
        self.suites.append(Suite(indent + 1))
        self.frames.append(frame)
        if if_charge is not None:
            frame.fuel_paid = if_charge
            self.discount = if_charge.hoist

    def _br_table(self, instr: Instr) -> None:
        labels, default = instr.arg
        index = self._evaluate(self.stack.pop())
        arity = self.frames[-1 - default].label_arity
        if arity:
            top = len(self.stack) - arity
            for i in range(top, len(self.stack)):
                self.stack[i] = self._evaluate(self.stack[i])
        values = self._label_values(self.frames[-1 - default])
        runs: list[tuple[int, int]] = []  # (first index, depth); a run lasts until the next one
        for i, depth in enumerate((*labels, default)):
            if not runs or runs[-1][1] != depth:
                runs.append((i, depth))
        pending: set[int] = set()
        indent = self._begin_statement()
        if len(runs) > TABLE_DISPATCH_RUNS and self._table_dispatch(
            index, labels, default, values, indent, pending
        ):
            self._absorb_pending(pending)
            self.frame.unreachable = True
            return

        def emit(first: int, last: int, at: int) -> None:
            if first == last:
                target = self.frames[-1 - runs[first][1]]
                lines, more = self._jump(target, values)
                pending.update(more)
                for text in lines:
                    self._raw(at, text)
                return
            middle = (first + last + 1) // 2
            self._raw(at, f"if {index.expr} < {runs[middle][0]}:")
            emit(first, middle - 1, at + 1)
            self._raw(at, "else:")
            emit(middle, last, at + 1)
            if at + 1 > MAX_INDENT:
                raise NestingTooDeep(
                    f"function {self.func_index} nests too deeply for the compiler"
                )

        emit(0, len(runs) - 1, indent)
        self._absorb_pending(pending)
        self.frame.unreachable = True

    def _table_dispatch(
        self,
        index: Operand,
        labels: tuple[int, ...],
        default: int,
        values: list[Operand],
        indent: int,
        pending: set[int],
    ) -> bool:
        """A br_table as one lookup in a tuple of label numbers, if its jumps allow it (see
        ``TABLE_DISPATCH_RUNS``); whether it was emitted."""
        numbers: dict[int, str] = {}  # depth -> the number its jump sets
        shape: tuple[str, list[str]] | None = None  # the variable and the rest of a jump
        for depth in {*labels, default}:
            lines, more = self._jump(self.frames[-1 - depth], values)
            match = _NUMBERED_JUMP.fullmatch(lines[0]) if lines else None
            if match is None:
                return False
            this = (match[1] + " = {}" + match[3], lines[1:])
            if shape is not None and this != shape:
                return False
            shape = this
            numbers[depth] = match[2]
            pending.update(more)
        assert shape is not None
        table = ", ".join(numbers[depth] for depth in labels)
        picked = f"({table},)[{index.expr}] if {index.expr} < {len(labels)} else {numbers[default]}"
        self._raw(indent, shape[0].format(picked))
        for text in shape[1]:
            self._raw(indent, text)
        return True

    def _close_suite(self) -> set[int]:
        suite = self.suites.pop()
        if not suite.has_lines:
            self._raw(suite.indent, "pass")
        return suite.pending

    def _finish_arm(self, frame: Frame) -> None:
        """At the end of an if arm: move its results into the label's variables."""
        if not frame.unreachable and frame.vars:
            self._line(self._assign(frame.vars, self._pop(len(frame.results))))

    def _else(self) -> None:
        frame = self.frame
        self._finish_arm(frame)
        frame.then_reachable = not frame.unreachable
        frame.pending_then = self._close_suite()
        self._raw(frame.if_indent, "else:")
        self.suites.append(Suite(frame.if_indent + 1))
        if frame.fuel_paid is not None:
            self.discount = frame.fuel_paid.hoist
        frame.seen_else = True
        frame.unreachable = False
        self.stack.truncate(frame.height)
        self.stack.extend(frame.param_operands)

    def _end(self) -> None:
        frame = self.frames.pop()
        if frame.kind == BLOCK:
            self._close_region(frame)
        if frame.kind == FUNC:
            if not frame.unreachable:
                self._lines(self._return_lines(self._pop(len(frame.results))))
            return
        parent = self.frames[-1] if self.frames else None
        if frame.kind == IF:
            if not frame.seen_else and frame.vars:
                self.frames.append(frame)
                self._else()  # the implicit else passes the parameters through
                self.frames.pop()
            self._finish_arm(frame)
            if frame.seen_else:
                reachable = frame.then_reachable or not frame.unreachable or frame.branched
                pending = frame.pending_then | self._close_suite()
            else:
                reachable = True  # the missing else arm falls through
                pending = self._close_suite()
            self._absorb_pending(pending)
            self._reset_label(frame.id)
            self.stack.truncate(frame.height)
            self.stack.extend(Operand(v) for v in frame.vars)
            if frame.fuel_paid is not None:
                self.discount = frame.fuel_paid.join
        elif frame.kind == LOOP and frame.has_while:
            if not frame.unreachable:
                self._line("break")
            reachable = not frame.unreachable
            results = self._pop(len(frame.results))
            self._close_suite()
            self.while_depth -= 1
            self._after_while(frame)
            self.stack.truncate(frame.height)
            self.stack.extend(results)
        else:  # block, or a loop no branch targets
            if frame.targeted:
                if not frame.unreachable and frame.vars:
                    self._line(self._assign(frame.vars, self._pop(len(frame.results))))
                self._enter_label(frame, parent)
                self.stack.truncate(frame.height)
                self.stack.extend(Operand(v) for v in frame.vars)
            else:
                results = self._pop(len(frame.results))
                self.stack.truncate(frame.height)
                self.stack.extend(results)
            reachable = not frame.unreachable or frame.branched
            if frame.fuel_join:
                self.chain = list(frame.fuel_join[::-1])
                self.chain_total = sum(self.chain)
        if parent is not None and not reachable:
            parent.unreachable = True

    def _after_while(self, loop: Frame) -> None:
        """After a ``while``: propagate branches that left it towards their labels."""
        level = self._level()
        escaped = loop.escapes
        if not escaped:
            return
        if level.kind == LOOP and any(x < level.id for x in escaped):
            self._line(f"if 0 < _t < {level.id}: break")
        if level.kind == LOOP and level.id in escaped:
            indent = self._begin_statement()
            self._raw(indent, f"if _t == {level.id}:")
            self._raw(indent + 1, "_t = 0")
            self._raw(indent + 1, "continue")
        self._absorb_pending({x for x in escaped if x > level.id})


CONTROL = frozenset(
    {op.BLOCK, op.LOOP, op.IF, op.ELSE, op.END, op.BR, op.BR_IF, op.BR_TABLE, op.RETURN}
) | {op.UNREACHABLE}
Handler = Callable[[FunctionCompiler, Instr, bool, Module], None]
_other: Handler = FunctionCompiler._rest
DISPATCH: dict[int, Handler] = {
    op.LOCAL_GET: FunctionCompiler._local_get,
    op.LOCAL_SET: FunctionCompiler._local_set,
    op.LOCAL_TEE: FunctionCompiler._local_set,
    op.I32_CONST: FunctionCompiler._int_const,
    op.I64_CONST: FunctionCompiler._int_const,
    op.F32_CONST: FunctionCompiler._f32_const,
    op.F64_CONST: FunctionCompiler._f64_const,
    **dict.fromkeys(COND, FunctionCompiler._compare),
    **dict.fromkeys(VALUE, FunctionCompiler._compute),
    **dict.fromkeys(LOADS, FunctionCompiler._load),
    **dict.fromkeys(STORES, FunctionCompiler._store),
    **dict.fromkeys(CONTROL, FunctionCompiler._control),
    op.CALL: FunctionCompiler._call_direct,
    op.CALL_INDIRECT: FunctionCompiler._call_indirect,
    op.DROP: FunctionCompiler._drop,
    op.SELECT: FunctionCompiler._select,
    op.SELECT_T: FunctionCompiler._select,
    op.NOP: FunctionCompiler._nop,
    **dict.fromkeys(SIMD_CODES, lower_simd),
}
"""How each opcode is translated; anything else goes to ``FunctionCompiler._other``."""

"""Instruction sequences of the text format: flat and folded, with labels, locals and types.

Every instruction becomes the ``Instr`` the binary decoder would produce for the same module
(see ``opcodes.Imm``), except ``Instr.offset``, which is the byte offset of the instruction's
keyword in the source text. Folded forms are unfolded (operands first); ``(if c (then a)
(else b))`` becomes ``c if a else b end``, and an empty ``else`` branch is dropped as the
binary encoding of the spec does.

Symbolic references are resolved here: ``$ids`` that name nothing are malformed ("unknown
label", "unknown function $f", ...). Numeric indices are passed through unchecked: an index
out of range is the validator's error, not a syntax error.
"""

from __future__ import annotations

from typing import cast

from .. import opcodes as op
from ..module import Instr
from ..types import FuncType, ValType
from . import numbers, simd
from .cursor import Cursor
from .lexer import ID, KEYWORD, LPAREN, RPAREN, Tokens

Imm = op.Imm

# Index spaces, named as errors name them.
FUNC, TABLE, MEMORY, GLOBAL, TYPE, ELEM, DATA = (
    "function",
    "table",
    "memory",
    "global",
    "type",
    "elem segment",
    "data segment",
)

_BLOCKS = frozenset({op.BLOCK, op.LOOP, op.IF})


class _FlatBlock:
    """A flat ``block``/``loop``/``if`` still open; ``else_mark`` is where its ELSE went."""

    __slots__ = ("code", "else_mark", "label")

    def __init__(self, code: int, label: str | None) -> None:
        self.code = code
        self.label = label
        self.else_mark = -1


class _Sequence:
    """``instr*`` being read: its flat blocks still open."""

    __slots__ = ("open_blocks",)

    def __init__(self) -> None:
        self.open_blocks: list[_FlatBlock] = []


# What an open folded instruction waits for.
_OPERANDS = 0  # a plain instruction's folded operands, then ")"
_CONDITION = 1  # an if's folded condition, then "(then"
_BODY = 2  # a block's or loop's instructions, then ")"
_THEN = 3  # an if's then branch, then ")" and "(else" or ")"
_ELSE = 4  # an if's else branch, then "))"


class _Folded:
    """A folded instruction whose ``(`` has been read but not its ``)``."""

    __slots__ = ("else_mark", "instr", "label", "phase")

    def __init__(self, instr: Instr, phase: int, label: str | None = None) -> None:
        self.instr = instr  # an if's is appended once its condition is read
        self.phase = phase
        self.label = label  # an if's: in scope from its then branch on
        self.else_mark = -1


class TypeUse:
    """A parsed type use: the type index and the names of the parameters (for locals)."""

    __slots__ = ("index", "param_names", "params")

    def __init__(
        self, index: int, params: tuple[ValType, ...], param_names: list[str | None]
    ) -> None:
        self.index = index
        self.params = params
        self.param_names = param_names


class InstructionParser(Cursor):
    """Parses types uses, constant expressions and function bodies of one module.

    The module parser fills ``names`` (``$id`` -> index, per index space) and ``types``
    before any instruction is read.
    """

    def __init__(self, tokens: Tokens, pos: int = 0) -> None:
        super().__init__(tokens, pos)
        self.names: dict[str, dict[str, int]] = {
            space: {} for space in (FUNC, TABLE, MEMORY, GLOBAL, TYPE, ELEM, DATA)
        }
        self.types: list[FuncType] = []
        self._type_lookup: dict[FuncType, int] = {}
        self.labels: list[str | None] = []
        self.locals: dict[str, int] = {}
        self.uses_data_index = False  # memory.init or data.drop seen: a data count is needed

    # --- index spaces -------------------------------------------------------------------

    def resolve(self, space: str, ref: int | str, index: int | None = None) -> int:
        if isinstance(ref, int):
            return ref
        found = self.names[space].get(ref)
        if found is None:
            raise self.error(f"unknown {space} ${ref}", self.pos - 1 if index is None else index)
        return found

    def index(self, space: str) -> int:
        return self.resolve(space, self.index_ref())

    def optional_index(self, space: str) -> int:
        """An index that may be left out, meaning 0 (``table.get``, ``call_indirect`` ...)."""
        if self.at_index():
            return self.resolve(space, self.index_ref())
        return 0

    # --- types --------------------------------------------------------------------------

    def add_explicit_type(self, func_type: FuncType) -> int:
        self.types.append(func_type)
        self._type_lookup.setdefault(func_type, len(self.types) - 1)
        return len(self.types) - 1

    def type_index_for(self, func_type: FuncType) -> int:
        """The first type equal to ``func_type``, appending one if there is none (the spec's
        implicit type definitions, in textual order of their uses)."""
        found = self._type_lookup.get(func_type)
        if found is None:
            found = self.add_explicit_type(func_type)
        return found

    def value_types(self) -> list[ValType]:
        """``t*`` up to the closing parenthesis of a ``param``/``result``/``local``."""
        found = []
        while self.kinds[self.pos] != RPAREN:
            found.append(self.valtype())
        self.pos += 1
        return found

    def params(self, named: bool, names: list[str | None] | None) -> list[ValType]:
        """``(param ...)*``: with ``named``, ``(param $x t)`` is allowed, else ids are errors."""
        params: list[ValType] = []
        while self.at_open("param"):
            self.pos += 2
            if named and self.kinds[self.pos] == ID:
                name = str(self.values[self.pos])
                self.pos += 1
                params.append(self.valtype())
                self.close()
                if names is not None:
                    names.append(name)
                continue
            found = self.value_types()
            params.extend(found)
            if names is not None:
                names.extend([None] * len(found))
        return params

    def results(self) -> list[ValType]:
        results: list[ValType] = []
        while self.at_open("result"):
            self.pos += 2
            results.extend(self.value_types())
        return results

    def type_use(self, named_params: bool) -> TypeUse:
        """``(type x)? (param ...)* (result ...)*``, resolved to a type index.

        With both a ``(type x)`` and inline params/results they must agree ("inline function
        type"); with inline ones only, the first equal type is used or one is appended.
        """
        return self._resolve_type_use(*self._type_use_parts(named_params))

    def _type_use_parts(
        self, named_params: bool
    ) -> tuple[int | str | None, int, list[ValType], list[str | None], list[ValType]]:
        type_ref: int | str | None = None
        ref_at = self.pos
        if self.at_open("type"):
            self.pos += 2
            ref_at = self.pos
            type_ref = self.index_ref()
            self.close()
        names: list[str | None] = []
        params = self.params(named_params, names)
        results = self.results()
        if self.at_open("type") or self.at_open("param"):
            raise self.unexpected(self.pos + 1)  # out of order: (type) (param)* (result)*
        return type_ref, ref_at, params, names, results

    def _resolve_type_use(
        self,
        type_ref: int | str | None,
        ref_at: int,
        params: list[ValType],
        names: list[str | None],
        results: list[ValType],
    ) -> TypeUse:
        inline = FuncType(tuple(params), tuple(results))
        if type_ref is None:
            return TypeUse(self.type_index_for(inline), inline.params, names)
        index = self.resolve(TYPE, type_ref, ref_at)
        has_inline = bool(params or results)
        if index >= len(self.types):
            if has_inline:
                raise self.error(f"unknown type {index}", ref_at)
            return TypeUse(index, (), [])  # the validator reports the unknown type
        declared = self.types[index]
        if has_inline:
            if declared != inline:
                raise self.error(
                    f"inline function type {inline} does not match type {index}: {declared}",
                    ref_at,
                )
            return TypeUse(index, declared.params, names)
        return TypeUse(index, declared.params, [None] * len(declared.params))

    def block_type(self) -> object:
        """A block type: None (no values), a ValType (one result), or a type index.

        Without ``(type x)`` and with no params and at most one result, no type is used (and
        none is appended); otherwise it is a type use like a function's, without param names.
        """
        if self.kinds[self.pos] != LPAREN or self.kinds[self.pos + 1] != KEYWORD:
            return None
        if self.values[self.pos + 1] not in ("type", "param", "result"):
            return None
        type_ref, ref_at, params, names, results = self._type_use_parts(named_params=False)
        if type_ref is None and not params and len(results) <= 1:
            return results[0] if results else None
        return self._resolve_type_use(type_ref, ref_at, params, names, results).index

    # --- instruction sequences ------------------------------------------------------------

    def expression(self) -> list[Instr]:
        """``instr*`` up to a closing parenthesis (not consumed), followed by END."""
        out: list[Instr] = []
        self.instructions(out)
        out.append(Instr(op.END, None, self.starts[self.pos]))
        return out

    def folded_expression(self) -> list[Instr]:
        """One folded instruction followed by END (offset and element abbreviations)."""
        out: list[Instr] = []
        self.folded(out)
        out.append(Instr(op.END, None, self.starts[self.pos - 1]))
        return out

    def instructions(self, out: list[Instr]) -> None:
        """``instr*``: stops before ``)`` or anything else that is not an instruction."""
        self._read([_Sequence()], out)

    def folded(self, out: list[Instr]) -> None:
        """One folded instruction ``( ... )``, unfolded into ``out``."""
        work: list[_Sequence | _Folded] = []
        self._open_folded(work, out)
        self._read(work, out)

    def _read(self, work: list[_Sequence | _Folded], out: list[Instr]) -> None:
        """Read until ``work`` is done: the innermost open sequence or folded instruction is
        last. Nesting, flat or folded, is kept on these explicit stacks, never by recursion,
        so any depth reads in time linear in the text."""
        kinds, starts = self.kinds, self.starts
        while work:
            top = work[-1]
            if isinstance(top, _Sequence):
                if self._sequence_step(top, out):
                    work.pop()
                elif kinds[self.pos] == LPAREN:
                    self._open_folded(work, out)
                continue
            phase = top.phase
            if phase <= _CONDITION:  # _OPERANDS or _CONDITION
                if kinds[self.pos] == LPAREN and not (phase == _CONDITION and self.at_open("then")):
                    self._open_folded(work, out)
                elif phase == _OPERANDS:
                    self.close()
                    out.append(top.instr)
                    work.pop()
                else:
                    self.open("then")
                    out.append(top.instr)
                    self.labels.append(top.label)
                    top.phase = _THEN
                    work.append(_Sequence())
                continue
            self.close()  # of the body, or of the then or else branch
            if phase == _THEN and self.at_open("else"):
                else_at = starts[self.pos + 1]
                self.pos += 2
                top.else_mark = len(out)
                out.append(Instr(op.ELSE, None, else_at))
                top.phase = _ELSE
                work.append(_Sequence())
                continue
            if phase == _ELSE:
                if len(out) == top.else_mark + 1:
                    out.pop()  # an empty else branch: encoded as no else at all
                end_at = starts[self.pos]
                self.close()
            elif phase == _THEN:
                end_at = starts[self.pos]
                self.close()
            else:  # _BODY: the ")" just read closed the block itself
                end_at = starts[self.pos - 1]
            self.labels.pop()
            out.append(Instr(op.END, None, end_at))
            work.pop()

    def _open_folded(self, work: list[_Sequence | _Folded], out: list[Instr]) -> None:
        """Read a folded instruction's ``(``, keyword and immediates; push what it waits for."""
        self.pos += 1  # "("
        if self.kinds[self.pos] != KEYWORD:
            raise self.unexpected(expected="an instruction")
        code = op.BY_NAME.get(cast(str, self.values[self.pos]))
        if code is None:
            raise self.unexpected()
        at = self.starts[self.pos]
        self.pos += 1
        if code in _BLOCKS:
            label = self.optional_id()
            instr = Instr(code, self.block_type(), at)
            if code == op.IF:  # the condition comes first, outside the label's scope
                work.append(_Folded(instr, _CONDITION, label))
                return
            out.append(instr)
            self.labels.append(label)
            work.append(_Folded(instr, _BODY))
            work.append(_Sequence())
        else:
            work.append(_Folded(self._plain(code, at), _OPERANDS))

    def _sequence_step(self, sequence: _Sequence, out: list[Instr]) -> bool:
        """Read flat instructions of ``sequence`` up to a folded one (False) or up to its end
        (True): ``)`` or anything else that is not an instruction, all its blocks closed."""
        kinds, values, starts = self.kinds, self.values, self.starts
        open_blocks = sequence.open_blocks
        while True:
            kind = kinds[self.pos]
            if kind == LPAREN:
                return False
            if kind != KEYWORD:
                if open_blocks:
                    raise self.unexpected(expected="end")
                return True
            keyword = values[self.pos]
            at = starts[self.pos]
            if keyword == "end":
                if not open_blocks:
                    return True
                self.pos += 1
                block = open_blocks.pop()
                self._closing_label(block.label)
                if block.else_mark == len(out) - 1:
                    out.pop()  # an empty else branch: encoded as no else at all
                self.labels.pop()
                out.append(Instr(op.END, None, at))
            elif keyword == "else":
                if not open_blocks:
                    return True
                block = open_blocks[-1]
                if block.code != op.IF or block.else_mark >= 0:
                    raise self.unexpected()
                self.pos += 1
                self._closing_label(block.label)
                block.else_mark = len(out)
                out.append(Instr(op.ELSE, None, at))
            else:
                code = op.BY_NAME.get(cast(str, keyword))
                if code is None:
                    raise self.unexpected()
                self.pos += 1
                if code in _BLOCKS:
                    label = self.optional_id()
                    out.append(Instr(code, self.block_type(), at))
                    self.labels.append(label)
                    open_blocks.append(_FlatBlock(code, label))
                else:
                    out.append(self._plain(code, at))

    def _closing_label(self, label: str | None) -> None:
        if self.kinds[self.pos] == ID:
            given = self.values[self.pos]
            if given != label:
                raise self.error(f"mismatching label ${given}")
            self.pos += 1

    # --- one plain instruction ----------------------------------------------------------

    def _plain(self, code: int, at: int) -> Instr:
        """The immediates of a non-block instruction whose keyword was just read."""
        imm = op.IMMEDIATES[code]
        if imm is Imm.NONE:
            if code == op.SELECT and self.at_open("result"):
                return Instr(op.SELECT_T, tuple(self.results()), at)
            return Instr(code, None, at)
        if imm is Imm.LOCAL:
            return Instr(code, self._local_index(), at)
        if imm is Imm.I32:
            return Instr(code, self.int_literal(32), at)
        if imm is Imm.I64:
            return Instr(code, self.int_literal(64), at)
        if imm is Imm.F32:
            return Instr(code, self.float_literal(numbers.F32), at)
        if imm is Imm.F64:
            return Instr(code, self.float_literal(numbers.F64), at)
        if imm is Imm.MEMARG:
            return Instr(code, self._memarg(code), at)
        if imm is Imm.MEMARG_LANE:
            return Instr(code, (*self._memarg(code), simd.lane_index(self)), at)
        if imm is Imm.LANE:
            return Instr(code, simd.lane_index(self), at)
        if imm is Imm.V128:
            return Instr(code, simd.v128_literal(self), at)
        if imm is Imm.SHUFFLE:
            return Instr(code, simd.shuffle_lanes(self), at)
        if imm is Imm.LABEL:
            return Instr(code, self._label_index(), at)
        if imm is Imm.GLOBAL:
            return Instr(code, self.index(GLOBAL), at)
        if imm is Imm.FUNC:
            return Instr(code, self.index(FUNC), at)
        if imm is Imm.BR_TABLE:
            labels = [self._label_index()]
            while self.at_index():
                labels.append(self._label_index())
            return Instr(code, (tuple(labels[:-1]), labels[-1]), at)
        if imm is Imm.CALL_INDIRECT:
            table = self.optional_index(TABLE)
            return Instr(code, (self.type_use(named_params=False).index, table), at)
        if imm is Imm.TABLE:
            return Instr(code, self.optional_index(TABLE), at)
        if imm is Imm.MEMORY:
            return Instr(code, 0, at)
        if imm is Imm.REFTYPE:
            return Instr(code, self.heaptype(), at)
        if imm is Imm.ELEM:
            return Instr(code, self.index(ELEM), at)
        if imm is Imm.DATA:
            self.uses_data_index = True
            return Instr(code, self.index(DATA), at)
        if imm is Imm.MEMORY_INIT:
            self.uses_data_index = True
            first = self.index_ref()
            if self.at_index():  # memory.init memory data
                return Instr(code, (self.index(DATA), self.resolve(MEMORY, first)), at)
            return Instr(code, (self.resolve(DATA, first), 0), at)
        if imm is Imm.MEMORY_COPY:
            return Instr(code, (0, 0), at)
        if imm is Imm.TABLE_INIT:
            first = self.index_ref()
            if self.at_index():  # table.init table elem
                return Instr(code, (self.index(ELEM), self.resolve(TABLE, first)), at)
            return Instr(code, (self.resolve(ELEM, first), 0), at)
        if imm is Imm.TABLE_COPY:
            if self.at_index():
                destination = self.index(TABLE)
                return Instr(code, (destination, self.index(TABLE)), at)
            return Instr(code, (0, 0), at)
        raise AssertionError(f"no text syntax for immediate {imm}")  # every Imm is handled

    def _local_index(self) -> int:
        ref = self.index_ref()
        if isinstance(ref, int):
            return ref
        found = self.locals.get(ref)
        if found is None:
            raise self.error(f"unknown local ${ref}", self.pos - 1)
        return found

    def _label_index(self) -> int:
        ref = self.index_ref()
        if isinstance(ref, int):
            return ref
        labels = self.labels
        for depth in range(len(labels)):
            if labels[-1 - depth] == ref:
                return depth
        raise self.error(f"unknown label ${ref}", self.pos - 1)

    def _memarg(self, code: int) -> tuple[int, int]:
        offset = 0
        align = op.NATURAL_ALIGNMENT[code]
        if self.kinds[self.pos] == KEYWORD:
            text = str(self.values[self.pos])
            if text.startswith("offset="):
                offset = self._memarg_value(text[7:])
        if self.kinds[self.pos] == KEYWORD:
            text = str(self.values[self.pos])
            if text.startswith("align="):
                value = self._memarg_value(text[6:])
                if value == 0 or value & (value - 1):
                    raise self.error(f"alignment must be a power of two, not {value}", self.pos - 1)
                align = value.bit_length() - 1
        return (align, offset)

    def _memarg_value(self, text: str) -> int:
        try:
            value = numbers.parse_nat(text, 32)
        except ValueError as exc:
            message = str(exc)
            if message == "unexpected token":
                message = f"unknown operator {self.values[self.pos]}"
            raise self.error(message) from None
        self.pos += 1
        return value

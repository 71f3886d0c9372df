"""Binary format decoder: ``bytes`` in, ``module.Module`` out, or a ``DecodeError``.

::

    bytes ──header──> sections in order ──> Module (+ checks that span sections)
                         │
                         └─ code / constant expressions ──decode_expression──> [Instr, ...]

What a caller may rely on:

- ``decode_module`` raises nothing but ``DecodeError`` for any input (it is fuzzed) and
  finishes in time linear in the input. Memory stays proportional to the input (about 50-100
  bytes per input byte, mostly the ``Instr`` tuples): every count and length is checked
  against the bytes that remain before anything is built, so a length field cannot make it
  allocate more, and the locals of one function are capped at ``MAX_LOCALS``.
- Messages use the WebAssembly spec test suite's wording ("unexpected end", "section size
  mismatch", "integer too large", ...) and ``DecodeError.offset`` is the byte offset of the
  problem.
- Like the spec's reference decoder, the contents of a section (and of a function body)
  are read from the input as a whole and the declared size is checked afterwards, so a
  truncated or overlong part is reported the way the spec tests expect ("section size
  mismatch", "length out of bounds", "unexpected end of section or function").
- Instructions are decoded flat (``Instr`` list ending with the function's own ``end``),
  with immediates exactly as ``opcodes.Imm`` documents; block structure is checked only as
  far as the binary format requires (every ``else`` belongs to an ``if``, every body ends).
- SIMD (``0xFD``-prefixed) instructions and their immediates are read by
  ``simd_opcodes.decode_immediate``; an unknown subopcode is "illegal opcode fd NN".
"""

from __future__ import annotations

from typing import NoReturn

from . import opcodes as op
from .errors import DecodeError
from .leb128 import read_s33, read_signed, read_u32, read_unsigned
from .module import (
    DataSegment,
    ElementSegment,
    Export,
    Function,
    Global,
    Import,
    Instr,
    LocalTypes,
    Module,
    SegmentMode,
)
from .simd_opcodes import PREFIX as SIMD_PREFIX
from .simd_opcodes import decode_immediate as decode_simd
from .types import ExternKind, FuncType, GlobalType, Limits, MemoryType, TableType, ValType

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

MAX_LOCALS = 50_000
"""Engine cap on the declared locals of one function (the spec allows up to 2**32 - 1).

A function declaring more fails to decode with "too many locals" (the same cap as V8's).
"""

UNEXPECTED_END = "unexpected end of section or function"

# Section ids, and the order non-custom sections must come in (data count sits before code).
CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT = 0, 1, 2, 3, 4, 5, 6, 7
START, ELEMENT, CODE, DATA, DATA_COUNT = 8, 9, 10, 11, 12
_SECTION_RANK = {
    TYPE: 1,
    IMPORT: 2,
    FUNCTION: 3,
    TABLE: 4,
    MEMORY: 5,
    GLOBAL: 6,
    EXPORT: 7,
    START: 8,
    ELEMENT: 9,
    DATA_COUNT: 10,
    CODE: 11,
    DATA: 12,
}

# Byte -> value type (or None), for one-byte lookups without a try/except.
_VALTYPES: list[ValType | None] = [None] * 256
for _vt in ValType:
    _VALTYPES[_vt.value] = _vt
_REFTYPES: list[ValType | None] = [vt if vt is not None and vt.is_ref else None for vt in _VALTYPES]

# What follows each one-byte opcode, as small ints so the decode loop compares ints.
(
    _K_NONE,
    _K_INDEX,
    _K_I32,
    _K_MEMARG,
    _K_END,
    _K_BLOCK,
    _K_ELSE,
    _K_BR_TABLE,
    _K_CALL_INDIRECT,
    _K_I64,
    _K_F32,
    _K_F64,
    _K_ZERO,
    _K_SELECT_T,
    _K_REFTYPE,
    _K_PREFIX,
    _K_ILLEGAL,
    _K_MEMORY_INIT,
    _K_MEMORY_COPY,
    _K_INDEX_PAIR,
    _K_SIMD,
) = range(21)

_KIND_OF_IMM = {
    op.Imm.NONE: _K_NONE,
    op.Imm.BLOCKTYPE: _K_BLOCK,
    op.Imm.LABEL: _K_INDEX,
    op.Imm.BR_TABLE: _K_BR_TABLE,
    op.Imm.FUNC: _K_INDEX,
    op.Imm.CALL_INDIRECT: _K_CALL_INDIRECT,
    op.Imm.LOCAL: _K_INDEX,
    op.Imm.GLOBAL: _K_INDEX,
    op.Imm.TABLE: _K_INDEX,
    op.Imm.MEMARG: _K_MEMARG,
    op.Imm.MEMORY: _K_ZERO,
    op.Imm.I32: _K_I32,
    op.Imm.I64: _K_I64,
    op.Imm.F32: _K_F32,
    op.Imm.F64: _K_F64,
    op.Imm.SELECT_T: _K_SELECT_T,
    op.Imm.REFTYPE: _K_REFTYPE,
    op.Imm.ELEM: _K_INDEX,
    op.Imm.DATA: _K_INDEX,
    op.Imm.MEMORY_INIT: _K_MEMORY_INIT,
    op.Imm.MEMORY_COPY: _K_MEMORY_COPY,
    op.Imm.TABLE_INIT: _K_INDEX_PAIR,
    op.Imm.TABLE_COPY: _K_INDEX_PAIR,
}

_KINDS: list[int] = [_K_ILLEGAL] * 256
_PREFIXED: dict[int, tuple[int, int]] = {}  # 0xFC sub-opcode -> (opcode, kind)
for _code, _imm in op.IMMEDIATES.items():
    if _code < 0x100:
        _KINDS[_code] = _KIND_OF_IMM[_imm]
    elif _code >> 8 == 0xFC:
        _PREFIXED[_code & 0xFF] = (_code, _KIND_OF_IMM[_imm])
_KINDS[op.END] = _K_END
_KINDS[op.ELSE] = _K_ELSE
_KINDS[0xFC] = _K_PREFIX
_KINDS[SIMD_PREFIX] = _K_SIMD

_DATA_OPS = frozenset({op.MEMORY_INIT, op.DATA_DROP})

_new = tuple.__new__  # builds an Instr without NamedTuple.__new__'s Python-level call


def decode_module(data: bytes, bodies: bool = True) -> Module:
    """Decode a module in the binary format. Raises ``DecodeError`` (only) if malformed.
    ``bodies=False``: every function's body is left empty, unread (a module whose code
    comes from the code cache; its bodies were checked when the entry was made)."""
    if not isinstance(data, bytes):
        data = bytes(data)
    try:
        return _ModuleDecoder(data, bodies).decode()
    except IndexError:
        # Every read goes through ``bytes`` indexing, so this is a read past the end.
        raise DecodeError(UNEXPECTED_END, len(data)) from None


def decode_expression(data: bytes, pos: int) -> tuple[list[Instr], int, bool]:
    """Decode instructions from ``pos`` up to and including the ``end`` closing the expression.

    Returns the instructions, the position after that ``end``, and whether a ``memory.init``
    or ``data.drop`` occurred (they need a data count section). Reading past the end of
    ``data`` raises ``IndexError``; ``decode_module`` reports it as "unexpected end".
    """
    instrs: list[Instr] = []
    append = instrs.append
    new = _new
    instr_cls = Instr
    kinds = _KINDS
    valtypes = _VALTYPES
    open_blocks: list[int] = []  # opcode of each open block/loop/if (ELSE once in else)
    uses_data = False
    while True:
        start = pos
        code = data[pos]
        pos += 1
        kind = kinds[code]
        if kind == _K_NONE:
            append(new(instr_cls, (code, None, start)))
        elif kind == _K_INDEX:
            arg = data[pos]
            if arg < 0x80:
                pos += 1
            else:
                arg, pos = read_unsigned(data, pos, 32)
            append(new(instr_cls, (code, arg, start)))
        elif kind == _K_I32:
            arg = data[pos]
            if arg < 0x40:
                pos += 1
            else:
                arg, pos = read_signed(data, pos, 32)
                arg &= 0xFFFFFFFF
            append(new(instr_cls, (code, arg, start)))
        elif kind == _K_MEMARG:
            align = data[pos]
            if align < 0x20:
                pos += 1
            else:
                align, pos = read_unsigned(data, pos, 32)
                if align >= 0x20:
                    raise DecodeError("malformed memop flags", pos - 1)
            offset = data[pos]
            if offset < 0x80:
                pos += 1
            else:
                offset, pos = read_unsigned(data, pos, 32)
            append(new(instr_cls, (code, (align, offset), start)))
        elif kind == _K_END:
            append(new(instr_cls, (code, None, start)))
            if not open_blocks:
                return instrs, pos, uses_data
            open_blocks.pop()
        elif kind == _K_BLOCK:
            byte = data[pos]
            blocktype: ValType | int | None
            if byte == 0x40:
                blocktype = None
                pos += 1
            elif valtypes[byte] is not None:
                blocktype = valtypes[byte]
                pos += 1
            else:
                blocktype, next_pos = read_s33(data, pos)
                if blocktype < 0:
                    raise DecodeError("malformed block type", pos)
                pos = next_pos
            open_blocks.append(code)
            append(new(instr_cls, (code, blocktype, start)))
        elif kind == _K_ELSE:
            if not open_blocks or open_blocks[-1] != op.IF:
                raise DecodeError("END opcode expected", start)
            open_blocks[-1] = op.ELSE
            append(new(instr_cls, (code, None, start)))
        elif kind == _K_BR_TABLE:
            count, pos = _length(data, pos)
            labels = []
            for _ in range(count):
                label = data[pos]
                if label < 0x80:
                    pos += 1
                else:
                    label, pos = read_unsigned(data, pos, 32)
                labels.append(label)
            default, pos = read_u32(data, pos)
            append(new(instr_cls, (code, (tuple(labels), default), start)))
        elif kind == _K_CALL_INDIRECT:
            type_index, pos = read_u32(data, pos)
            table_index, pos = read_u32(data, pos)
            append(new(instr_cls, (code, (type_index, table_index), start)))
        elif kind == _K_I64:
            arg = data[pos]
            if arg < 0x40:
                pos += 1
            else:
                arg, pos = read_signed(data, pos, 64)
                arg &= 0xFFFFFFFFFFFFFFFF
            append(new(instr_cls, (code, arg, start)))
        elif kind in (_K_F32, _K_F64):
            width = 4 if kind == _K_F32 else 8
            if pos + width > len(data):
                raise DecodeError(UNEXPECTED_END, len(data))
            bits = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            append(new(instr_cls, (code, bits, start)))
        elif kind == _K_ZERO:
            pos = _zero_byte(data, pos)
            append(new(instr_cls, (code, 0, start)))
        elif kind == _K_SELECT_T:
            count, pos = _length(data, pos)
            types = []
            for _ in range(count):
                valtype, pos = _valtype(data, pos)
                types.append(valtype)
            append(new(instr_cls, (code, tuple(types), start)))
        elif kind == _K_REFTYPE:
            reftype, pos = _reftype(data, pos)
            append(new(instr_cls, (code, reftype, start)))
        elif kind == _K_PREFIX:
            sub, pos = read_u32(data, pos)
            entry = _PREFIXED.get(sub)
            if entry is None:
                raise DecodeError(f"illegal opcode fc {sub:02x}", start)
            code, kind = entry
            prefixed_arg: int | tuple[int, int] | None
            if kind == _K_NONE:
                prefixed_arg = None
            elif kind == _K_INDEX:
                prefixed_arg, pos = read_u32(data, pos)
            elif kind == _K_ZERO:
                pos = _zero_byte(data, pos)
                prefixed_arg = 0
            elif kind == _K_MEMORY_INIT:
                segment, pos = read_u32(data, pos)
                pos = _zero_byte(data, pos)
                prefixed_arg = (segment, 0)
            elif kind == _K_MEMORY_COPY:
                pos = _zero_byte(data, pos)
                pos = _zero_byte(data, pos)
                prefixed_arg = (0, 0)
            else:  # _K_INDEX_PAIR: table.init (elem, table), table.copy (dst, src)
                first, pos = read_u32(data, pos)
                second, pos = read_u32(data, pos)
                prefixed_arg = (first, second)
            if code in _DATA_OPS:
                uses_data = True
            append(new(instr_cls, (code, prefixed_arg, start)))
        elif kind == _K_SIMD:
            code, simd_arg, pos = decode_simd(data, pos, start)
            append(new(instr_cls, (code, simd_arg, start)))
        else:
            raise DecodeError(f"illegal opcode {code:02x}", start)


def _length(data: bytes, pos: int) -> tuple[int, int]:
    """A vector count or byte length: never more than the bytes left ("length out of bounds")."""
    value, next_pos = read_u32(data, pos)
    if value > len(data) - pos:
        raise DecodeError("length out of bounds", pos)
    return value, next_pos


def _zero_byte(data: bytes, pos: int) -> int:
    if data[pos] != 0:
        raise DecodeError("zero byte expected", pos)
    return pos + 1


def _valtype(data: bytes, pos: int) -> tuple[ValType, int]:
    byte = data[pos]
    valtype = _VALTYPES[byte]
    if valtype is None:
        _bad_type_byte(data, pos, "malformed value type")
    return valtype, pos + 1


def _reftype(data: bytes, pos: int) -> tuple[ValType, int]:
    reftype = _REFTYPES[data[pos]]
    if reftype is None:
        _bad_type_byte(data, pos, "malformed reference type")
    return reftype, pos + 1


def _bad_type_byte(data: bytes, pos: int, message: str) -> NoReturn:
    # Types are one-byte signed LEB128 numbers; a continuation bit makes the encoding too
    # long for the 7 bits a type has (the spec's reading of it).
    if data[pos] & 0x80:
        raise DecodeError("integer representation too long", pos + 1)
    raise DecodeError(message, pos)


class _ModuleDecoder:
    """Reads sections in order; ``pos`` moves through the whole input."""

    def __init__(self, data: bytes, bodies: bool = True) -> None:
        self.data = data
        self.bodies_wanted = bodies
        self.pos = 0
        self.module = Module()
        self.func_type_indices: list[int] = []
        self.bodies: list[tuple[int, LocalTypes, list[Instr]]] = []
        self.code_uses_data = False

    # -- primitive reads -------------------------------------------------------------

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        value, self.pos = read_u32(self.data, self.pos)
        return value

    def length(self) -> int:
        value, self.pos = _length(self.data, self.pos)
        return value

    def raw(self, size: int) -> bytes:
        data, pos = self.data, self.pos
        if size < 0 or pos + size > len(data):
            raise DecodeError(UNEXPECTED_END, len(data))
        self.pos = pos + size
        return data[pos : pos + size]

    def name(self) -> str:
        start = self.pos
        raw = self.raw(self.length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("malformed UTF-8 encoding", start) from None

    def valtype(self) -> ValType:
        valtype, self.pos = _valtype(self.data, self.pos)
        return valtype

    def reftype(self) -> ValType:
        reftype, self.pos = _reftype(self.data, self.pos)
        return reftype

    def limits(self) -> Limits:
        has_max, self.pos = read_unsigned(self.data, self.pos, 1)
        minimum = self.u32()
        return Limits(minimum, self.u32() if has_max else None)

    def global_type(self) -> GlobalType:
        valtype = self.valtype()
        mutability = self.byte()
        if mutability > 1:
            raise DecodeError("malformed mutability", self.pos - 1)
        return GlobalType(valtype, mutability == 1)

    def expression(self) -> list[Instr]:
        instrs, self.pos, _ = decode_expression(self.data, self.pos)
        return instrs

    # -- the module --------------------------------------------------------------------

    def decode(self) -> Module:
        data = self.data
        # Both header words are read whole before they are compared (as the spec does).
        if len(data) < 4:
            raise DecodeError(UNEXPECTED_END, len(data))
        if data[:4] != MAGIC:
            raise DecodeError("magic header not detected", 0)
        if len(data) < 8:
            raise DecodeError(UNEXPECTED_END, len(data))
        if data[4:8] != VERSION:
            raise DecodeError("unknown binary version", 4)
        self.pos = 8
        last_rank = 0
        while self.pos < len(data):
            section_start = self.pos
            section_id = data[section_start]
            if section_id > DATA_COUNT:
                raise DecodeError("malformed section id", section_start)
            if section_id != CUSTOM:
                rank = _SECTION_RANK[section_id]
                if rank <= last_rank:
                    # Out of order or repeated: the reference decoder stops before it.
                    raise DecodeError("unexpected content after last section", section_start)
                last_rank = rank
            self.pos += 1
            size = self.length()
            content_start = self.pos
            self.section(section_id, size)
            if self.pos != content_start + size:
                raise DecodeError("section size mismatch", content_start)
        return self.finish()

    def section(self, section_id: int, size: int) -> None:
        module = self.module
        if section_id == CUSTOM:
            start = self.pos
            name = self.name()
            module.customs.append((name, self.raw(size - (self.pos - start))))
        elif section_id == TYPE:
            module.types = [self.func_type() for _ in range(self.length())]
        elif section_id == IMPORT:
            module.imports = [self.import_() for _ in range(self.length())]
        elif section_id == FUNCTION:
            self.func_type_indices = [self.u32() for _ in range(self.length())]
        elif section_id == TABLE:
            module.tables = [self.table_type() for _ in range(self.length())]
        elif section_id == MEMORY:
            module.memories = [MemoryType(self.limits()) for _ in range(self.length())]
        elif section_id == GLOBAL:
            module.globals = [
                Global(self.global_type(), self.expression()) for _ in range(self.length())
            ]
        elif section_id == EXPORT:
            module.exports = [self.export() for _ in range(self.length())]
        elif section_id == START:
            module.start = self.u32()
        elif section_id == ELEMENT:
            module.elements = [self.element_segment() for _ in range(self.length())]
        elif section_id == CODE:
            module.code_bytes = size
            self.bodies = [self.code_entry() for _ in range(self.length())]
        elif section_id == DATA:
            module.datas = [self.data_segment() for _ in range(self.length())]
        else:  # DATA_COUNT
            module.data_count = self.u32()

    def finish(self) -> Module:
        module, end = self.module, len(self.data)
        if len(self.func_type_indices) != len(self.bodies):
            raise DecodeError("function and code section have inconsistent lengths", end)
        if module.data_count is not None and module.data_count != len(module.datas):
            raise DecodeError("data count and data section have inconsistent lengths", end)
        if module.data_count is None and self.code_uses_data:
            raise DecodeError("data count section required", end)
        module.functions = [
            Function(type_index, local_types, body, offset)
            for type_index, (offset, local_types, body) in zip(
                self.func_type_indices, self.bodies, strict=True
            )
        ]
        return module

    # -- section entries ----------------------------------------------------------------

    def func_type(self) -> FuncType:
        form = self.data[self.pos]
        if form != 0x60:
            _bad_type_byte(self.data, self.pos, "malformed function type")
        self.pos += 1
        params = tuple(self.valtype() for _ in range(self.length()))
        results = tuple(self.valtype() for _ in range(self.length()))
        return FuncType(params, results)

    def table_type(self) -> TableType:
        elem_type = self.reftype()
        return TableType(elem_type, self.limits())

    def import_(self) -> Import:
        module_name = self.name()
        item_name = self.name()
        kind = self.byte()
        desc: int | TableType | MemoryType | GlobalType
        if kind == ExternKind.FUNC:
            desc = self.u32()
        elif kind == ExternKind.TABLE:
            desc = self.table_type()
        elif kind == ExternKind.MEMORY:
            desc = MemoryType(self.limits())
        elif kind == ExternKind.GLOBAL:
            desc = self.global_type()
        else:
            raise DecodeError("malformed import kind", self.pos - 1)
        return Import(module_name, item_name, ExternKind(kind), desc)

    def export(self) -> Export:
        name = self.name()
        kind = self.byte()
        if kind > ExternKind.GLOBAL:
            raise DecodeError("malformed export kind", self.pos - 1)
        return Export(name, ExternKind(kind), self.u32())

    def code_entry(self) -> tuple[int, LocalTypes, list[Instr]]:
        size = self.length()
        start = locals_start = self.pos
        groups = [(self.u32(), self.valtype()) for _ in range(self.length())]
        total = sum(count for count, _ in groups)
        if total > MAX_LOCALS:  # also covers the format's own limit of 2**32 - 1
            raise DecodeError("too many locals", locals_start)
        if not self.bodies_wanted:
            self.pos = start + size
            return start, LocalTypes(groups), []
        body, self.pos, uses_data = decode_expression(self.data, self.pos)
        if uses_data:
            self.code_uses_data = True
        if self.pos != start + size:
            raise DecodeError("section size mismatch", start)
        return start, LocalTypes(groups), body

    def element_segment(self) -> ElementSegment:
        flags_at = self.pos
        flags = self.u32()
        if flags > 7:
            raise DecodeError("malformed elements segment kind", flags_at)
        # Bit 0: passive or declarative; bit 1: explicit table (active) or declarative;
        # bit 2: elements are expressions (with a reference type) rather than function indices.
        table = 0
        offset: list[Instr] | None = None
        if flags & 1:
            mode = SegmentMode.DECLARATIVE if flags & 2 else SegmentMode.PASSIVE
        else:
            mode = SegmentMode.ACTIVE
            if flags & 2:
                table = self.u32()
            offset = self.expression()
        if flags & 4:
            elem_type = self.reftype() if flags & 3 else ValType.FUNCREF
            init = [self.expression() for _ in range(self.length())]
        else:
            elem_type = ValType.FUNCREF
            if flags & 3:
                kind = self.byte()
                if kind != 0x00:
                    raise DecodeError("malformed element kind", self.pos - 1)
            init = [self.function_reference() for _ in range(self.length())]
        return ElementSegment(mode, elem_type, init, table, offset)

    def function_reference(self) -> list[Instr]:
        at = self.pos
        index = self.u32()
        return [Instr(op.REF_FUNC, index, at), Instr(op.END, None, at)]

    def data_segment(self) -> DataSegment:
        flags_at = self.pos
        flags = self.u32()
        if flags == 0:
            offset = self.expression()
            return DataSegment(SegmentMode.ACTIVE, self.raw(self.length()), 0, offset)
        if flags == 1:
            return DataSegment(SegmentMode.PASSIVE, self.raw(self.length()))
        if flags == 2:
            memory = self.u32()
            offset = self.expression()
            return DataSegment(SegmentMode.ACTIVE, self.raw(self.length()), memory, offset)
        raise DecodeError("malformed data segment kind", flags_at)

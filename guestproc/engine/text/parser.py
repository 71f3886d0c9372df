"""WAT modules: module fields, index spaces and every abbreviation of the text format.

::

    tokens --declare (pass 1)--> names of every index space, explicit types
           --define  (pass 2)--> Module (the same model the binary decoder produces)

Pass 1 walks the fields only to give every ``$id`` its index (so a function may call one
defined later) and to read the explicit ``(type ...)`` definitions, which must all be known
before an inline type use can pick or append one. Pass 2 parses every field completely.

Abbreviations are expanded as the spec describes: inline ``(import ...)``/``(export ...)`` on
functions, tables, memories and globals; inline type uses with implicit type definitions,
appended in textual order; ``(table reftype (elem ...))`` and ``(memory (data ...))``, whose
segments follow their table or memory; ``(offset ...)`` written as one folded instruction;
element lists of function indices (stored as ``ref.func`` expressions, as the decoder does).

Well-formedness rules the spec gives the text format are malformed errors (``DecodeError``):
imports after definitions, duplicate ``$ids``, inline types that contradict ``(type x)``,
unknown ``$ids``, a second ``start``. Everything else (types, index ranges) is left to the
validator.
"""

from __future__ import annotations

from .. import opcodes as op
from ..module import (
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
from ..types import (
    PAGE_SIZE,
    ExternKind,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
    ValType,
)
from .cursor import REFTYPES
from .instructions import DATA, ELEM, FUNC, GLOBAL, MEMORY, TABLE, TYPE, InstructionParser
from .lexer import ID, KEYWORD, LPAREN, NAT, Tokens

_EXTERN_KINDS = {
    "func": (ExternKind.FUNC, FUNC),
    "table": (ExternKind.TABLE, TABLE),
    "memory": (ExternKind.MEMORY, MEMORY),
    "global": (ExternKind.GLOBAL, GLOBAL),
}
_DEFINITION_NAMES = {"func": "function", "table": "table", "memory": "memory", "global": "global"}


class ModuleParser(InstructionParser):
    """Parses the fields in ``tokens[pos:end]`` (``end``: the index of the token after the
    last field, a ``)`` or EOF) into a ``Module``."""

    def __init__(self, tokens: Tokens, pos: int, end: int) -> None:
        super().__init__(tokens, pos)
        self.end = end
        self.module = Module()
        self._counts = dict.fromkeys((FUNC, TABLE, MEMORY, GLOBAL, ELEM, DATA), 0)
        self._next_index = dict.fromkeys(ExternKind, 0)  # pass 2: imports + definitions so far

    def parse(self) -> Module:
        first = self.pos
        self._declare()
        self.pos = first
        self._define()
        self.module.types = self.types
        if self.uses_data_index:
            # The binary format needs a data count section for these instructions.
            self.module.data_count = len(self.module.datas)
        return self.module

    # --- pass 1: names ------------------------------------------------------------------

    def _declare(self) -> None:
        kinds, values, closers = self.kinds, self.values, self.closers
        first_definition: str | None = None
        pos = self.pos
        while pos != self.end:
            if kinds[pos] != LPAREN or kinds[pos + 1] != KEYWORD:
                raise self.unexpected(pos, expected="a module field")
            keyword = values[pos + 1]
            after = closers[pos] + 1
            if keyword == "type":
                self.pos = pos
                self._type_field()
            elif keyword == "import":
                desc = pos + 4
                if desc < after and any(self.at_open(kind, desc) for kind in _EXTERN_KINDS):
                    if first_definition is not None:
                        raise self.error(f"import after {first_definition}", pos + 1)
                    self._bind(_EXTERN_KINDS[str(values[desc + 1])][1], desc + 2)
            elif keyword in _EXTERN_KINDS:
                space = _EXTERN_KINDS[str(keyword)][1]
                i = pos + 2 + (kinds[pos + 2] == ID)
                while self.at_open("export", i):
                    i = closers[i] + 1
                if self.at_open("import", i):
                    if first_definition is not None:
                        raise self.error(f"import after {first_definition}", i + 1)
                else:
                    first_definition = first_definition or _DEFINITION_NAMES[str(keyword)]
                    if keyword == "table" and kinds[i] == KEYWORD and values[i] in REFTYPES:
                        self._counts[ELEM] += 1  # the segment of (table reftype (elem ...))
                    elif keyword == "memory" and self.at_open("data", i):
                        self._counts[DATA] += 1  # the segment of (memory (data ...))
                self._bind(space, pos + 2)
            elif keyword == "elem":
                self._bind(ELEM, pos + 2)
            elif keyword == "data":
                self._bind(DATA, pos + 2)
            elif keyword != "export" and keyword != "start":
                raise self.unexpected(pos + 1, expected="a module field")
            pos = after

    def _bind(self, space: str, id_at: int) -> None:
        """Count one more item in ``space``, named by the ``$id`` at ``id_at`` if there is one."""
        index = self._counts[space]
        self._counts[space] = index + 1
        if self.kinds[id_at] == ID:
            name = str(self.values[id_at])
            names = self.names[space]
            if name in names:
                raise self.error(f"duplicate {_duplicate_word(space)} ${name}", id_at)
            names[name] = index

    def _type_field(self) -> None:
        """``(type $id? (func (param $id? t*)* (result t*)*))``."""
        self.pos += 2
        id_at = self.pos
        name = self.optional_id()
        self.open("func")
        params = self.params(named=True, names=None)
        results = self.results()
        self.close()
        self.close()
        index = self.add_explicit_type(FuncType(tuple(params), tuple(results)))
        if name is not None:
            if name in self.names[TYPE]:
                raise self.error(f"duplicate type ${name}", id_at)
            self.names[TYPE][name] = index

    # --- pass 2: definitions ------------------------------------------------------------

    def _define(self) -> None:
        fields = {
            "type": self._skip_field,
            "import": self._import_field,
            "func": self._func_field,
            "table": self._table_field,
            "memory": self._memory_field,
            "global": self._global_field,
            "export": self._export_field,
            "start": self._start_field,
            "elem": self._elem_field,
            "data": self._data_field,
        }
        while self.pos != self.end:
            keyword = str(self.values[self.pos + 1])
            self.pos += 2
            fields[keyword]()

    def _skip_field(self) -> None:
        self.pos = self.closers[self.pos - 2] + 1

    def _inline_exports(self, kind: ExternKind, index: int) -> None:
        while self.at_open("export"):
            self.pos += 2
            self.module.exports.append(Export(self.name(), kind, index))
            self.close()

    def _inline_import(self) -> tuple[str, str] | None:
        if not self.at_open("import"):
            return None
        self.pos += 2
        names = (self.name(), self.name())
        self.close()
        return names

    def _import_field(self) -> None:
        module_name = self.name()
        name = self.name()
        if self.kinds[self.pos] != LPAREN or self.values[self.pos + 1] not in _EXTERN_KINDS:
            raise self.unexpected(self.pos + 1 if self.kinds[self.pos] == LPAREN else None)
        kind = _EXTERN_KINDS[str(self.values[self.pos + 1])][0]
        self.pos += 2
        self.optional_id()
        self._take_index(kind)
        self._import(module_name, name, kind)
        self.close()
        self.close()

    def _import(self, module_name: str, name: str, kind: ExternKind) -> None:
        """The description of an import, after its ``$id``; ends before the ``)``."""
        desc: int | TableType | MemoryType | GlobalType
        if kind is ExternKind.FUNC:
            desc = self.type_use(named_params=True).index
        elif kind is ExternKind.TABLE:
            desc = self._table_type()
        elif kind is ExternKind.MEMORY:
            desc = MemoryType(self._limits())
        else:
            desc = self._global_type()
        self.module.imports.append(Import(module_name, name, kind, desc))

    def _func_field(self) -> None:
        self.optional_id()
        index = self._take_index(ExternKind.FUNC)
        self._inline_exports(ExternKind.FUNC, index)
        imported = self._inline_import()
        if imported is not None:
            self._import(*imported, ExternKind.FUNC)
            self.close()
            return
        body_at = self.starts[self.pos]
        use_at = self.pos
        use = self.type_use(named_params=True)
        locals_by_name: dict[str, int] = {}
        for i, param_name in enumerate(use.param_names):
            if param_name is not None:
                if param_name in locals_by_name:
                    raise self.error(f"duplicate local ${param_name}", use_at)
                locals_by_name[param_name] = i
        local_types: list[ValType] = []
        while self.at_open("local"):
            self.pos += 2
            if self.kinds[self.pos] == ID:
                local_name = str(self.values[self.pos])
                if local_name in locals_by_name:
                    raise self.error(f"duplicate local ${local_name}")
                locals_by_name[local_name] = len(use.params) + len(local_types)
                self.pos += 1
                local_types.append(self.valtype())
                self.close()
            else:
                local_types.extend(self.value_types())
        self.locals = locals_by_name
        self.labels = []
        body = self.expression()
        self.close()
        self.locals = {}
        self.module.functions.append(Function(use.index, LocalTypes.of(local_types), body, body_at))

    def _take_index(self, kind: ExternKind) -> int:
        """The index of the import or definition of ``kind`` being parsed."""
        index = self._next_index[kind]
        self._next_index[kind] = index + 1
        return index

    def _table_field(self) -> None:
        self.optional_id()
        index = self._take_index(ExternKind.TABLE)
        self._inline_exports(ExternKind.TABLE, index)
        imported = self._inline_import()
        if imported is not None:
            self._import(*imported, ExternKind.TABLE)
        elif self.kinds[self.pos] == KEYWORD and self.values[self.pos] in REFTYPES:
            # (table reftype (elem ...)): a table exactly as large as its active segment
            elem_type = self.reftype()
            self.open("elem")
            init = self._elem_items(func_indices=self.kinds[self.pos] != LPAREN)
            self.close()
            size = len(init)
            self.module.tables.append(TableType(elem_type, Limits(size, size)))
            self.module.elements.append(
                ElementSegment(SegmentMode.ACTIVE, elem_type, init, index, _zero_offset())
            )
        else:
            self.module.tables.append(self._table_type())
        self.close()

    def _memory_field(self) -> None:
        self.optional_id()
        index = self._take_index(ExternKind.MEMORY)
        self._inline_exports(ExternKind.MEMORY, index)
        imported = self._inline_import()
        if imported is not None:
            self._import(*imported, ExternKind.MEMORY)
        elif self.at_open("data"):
            # (memory (data ...)): a memory exactly as large as its data, rounded up to pages
            self.pos += 2
            data = self.strings()
            self.close()
            pages = -(-len(data) // PAGE_SIZE)
            self.module.memories.append(MemoryType(Limits(pages, pages)))
            self.module.datas.append(DataSegment(SegmentMode.ACTIVE, data, index, _zero_offset()))
        else:
            self.module.memories.append(MemoryType(self._limits()))
        self.close()

    def _global_field(self) -> None:
        self.optional_id()
        index = self._take_index(ExternKind.GLOBAL)
        self._inline_exports(ExternKind.GLOBAL, index)
        imported = self._inline_import()
        if imported is not None:
            self._import(*imported, ExternKind.GLOBAL)
        else:
            global_type = self._global_type()
            self.labels, self.locals = [], {}
            self.module.globals.append(Global(global_type, self.expression()))
        self.close()

    def _export_field(self) -> None:
        name = self.name()
        if self.kinds[self.pos] != LPAREN or self.values[self.pos + 1] not in _EXTERN_KINDS:
            raise self.unexpected(self.pos + 1 if self.kinds[self.pos] == LPAREN else None)
        kind, space = _EXTERN_KINDS[str(self.values[self.pos + 1])]
        self.pos += 2
        index = self.index(space)
        self.close()
        self.close()
        self.module.exports.append(Export(name, kind, index))

    def _start_field(self) -> None:
        if self.module.start is not None:
            raise self.error("multiple start sections", self.pos - 1)
        self.module.start = self.index(FUNC)
        self.close()

    def _elem_field(self) -> None:
        self.optional_id()
        mode = SegmentMode.PASSIVE
        table = 0
        offset: list[Instr] | None = None
        explicit_table = False
        if self.kinds[self.pos] == KEYWORD and self.values[self.pos] == "declare":
            self.pos += 1
            mode = SegmentMode.DECLARATIVE
        else:
            if self.at_open("table"):
                self.pos += 2
                table = self.index(TABLE)
                self.close()
                explicit_table = True
            elif self.kinds[self.pos] == NAT and self.kinds[self.pos + 1] == LPAREN:
                # Wasm 1.0's (elem x (offset ...) x*): the table without (table ...)
                table = self.index(TABLE)
            if self.kinds[self.pos] == LPAREN and not self.at_open("item"):
                mode = SegmentMode.ACTIVE
                offset = self._offset()
            elif explicit_table:
                raise self.unexpected(expected="an offset")
        keyword = self.values[self.pos] if self.kinds[self.pos] == KEYWORD else None
        if keyword == "func":
            self.pos += 1
            elem_type, init = ValType.FUNCREF, self._elem_items(func_indices=True)
        elif keyword in REFTYPES:
            elem_type = self.reftype()
            init = self._elem_items(func_indices=False)
        elif mode is SegmentMode.ACTIVE and not explicit_table:
            # (elem (offset ...) x*): function indices, without the word func
            elem_type, init = ValType.FUNCREF, self._elem_items(func_indices=True)
        else:
            raise self.unexpected(expected="func or a reference type")
        self.close()
        self.module.elements.append(ElementSegment(mode, elem_type, init, table, offset))

    def _elem_items(self, func_indices: bool) -> list[list[Instr]]:
        """Function indices (as ``ref.func`` expressions) or element expressions."""
        items: list[list[Instr]] = []
        self.labels, self.locals = [], {}
        if func_indices:
            while self.at_index():
                at = self.starts[self.pos]
                index = self.index(FUNC)
                items.append([Instr(op.REF_FUNC, index, at), Instr(op.END, None, at)])
            return items
        while self.kinds[self.pos] == LPAREN:
            if self.at_open("item"):
                self.pos += 2
                items.append(self.expression())
                self.close()
            else:
                items.append(self.folded_expression())
        return items

    def _offset(self) -> list[Instr]:
        """``(offset instr*)`` or its abbreviation, one folded instruction."""
        self.labels, self.locals = [], {}
        if self.at_open("offset"):
            self.pos += 2
            expr = self.expression()
            self.close()
            return expr
        return self.folded_expression()

    def _data_field(self) -> None:
        self.optional_id()
        memory = 0
        offset: list[Instr] | None = None
        if self.at_open("memory"):
            self.pos += 2
            memory = self.index(MEMORY)
            self.close()
            offset = self._offset()
        elif self.kinds[self.pos] == NAT:
            memory = self.index(MEMORY)  # Wasm 1.0's (data x (offset ...) ...)
            offset = self._offset()
        elif self.kinds[self.pos] == LPAREN:
            offset = self._offset()
        data = self.strings()
        self.close()
        mode = SegmentMode.PASSIVE if offset is None else SegmentMode.ACTIVE
        self.module.datas.append(DataSegment(mode, data, memory, offset))

    # --- types of definitions -----------------------------------------------------------

    def _limits(self) -> Limits:
        minimum = self.nat32()
        maximum = self.nat32() if self.kinds[self.pos] == NAT else None
        return Limits(minimum, maximum)

    def _table_type(self) -> TableType:
        limits = self._limits()
        return TableType(self.reftype(), limits)

    def _global_type(self) -> GlobalType:
        if self.at_open("mut"):
            self.pos += 2
            valtype = self.valtype()
            self.close()
            return GlobalType(valtype, True)
        return GlobalType(self.valtype(), False)


def _zero_offset() -> list[Instr]:
    return [Instr(op.I32_CONST, 0, 0), Instr(op.END, None, 0)]


def _duplicate_word(space: str) -> str:
    return {FUNC: "func", ELEM: "elem", DATA: "data"}.get(space, space)


def parse_fields(tokens: Tokens, pos: int, end: int) -> Module:
    """The module whose fields are ``tokens[pos:end]``."""
    parser = ModuleParser(tokens, pos, end)
    try:
        return parser.parse()
    except RecursionError:  # pragma: no cover - a backstop: nesting is read without recursion
        raise parser.error("instructions nested too deeply") from None


__all__ = ["ModuleParser", "parse_fields"]

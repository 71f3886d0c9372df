"""What an instance's own code can change, as plain data: taken where the start function ran,
installed in a fresh instance of the same module in another process (Wizer's model).

::

    capture(instance)          ──▶ InstanceState: lists, ints, bytes, None -- nothing else
    install(instance, state)   every part checked against the module first (counts, sizes,
                               types, indices), then written; SnapshotError names the first
                               part that does not fit, and nothing has changed then

Code cannot change anything else of an instance: functions, types, exports and immutable
globals are the module's. What it can change, and how each travels:

- linear memory: its size in pages and its non-zero ``CHUNK``-sized pieces, by offset;
- mutable globals (defined, not imported): integers as unsigned ints, floats as their bits
  (NaN payloads exact), v128s as their 16 bytes (little-endian: wire formats carry ints of
  64 bits at most), references as a function index or None;
- tables: their size and every element, a function index or None;
- passive segments it dropped (``data.drop``, ``elem.drop``): their indices.

A state may come from a process that ran hostile code: ``install`` trusts nothing in it,
and builds no object but ints, bytes and the instance's own functions.
"""

from __future__ import annotations

from typing import Any

from .errors import EngineError
from .instance import Instance
from .numeric import f32_from_bits, f32_to_bits, f64_from_bits, f64_to_bits
from .runtime import Function, GlobalCell
from .types import PAGE_SIZE, ValType

CHUNK = PAGE_SIZE
"""The piece of linear memory a state carries when it is not all zeros."""
_ZERO_CHUNK = bytes(CHUNK)
_UNSIGNED_BITS = {ValType.I32: 32, ValType.I64: 64, ValType.F32: 32, ValType.F64: 64}

InstanceState = dict[str, list[Any]]
"""``{"memories": [[pages, [[offset, piece], ...]], ...], "globals": [[index, value], ...],
"tables": [[size, [element, ...]], ...], "dropped_data": [...], "dropped_elements": [...]}``."""


class SnapshotError(EngineError):
    """A state that cannot be taken from, or installed in, this instance."""


def capture(instance: Instance, views: bool = False) -> InstanceState:
    """What ``instance`` holds now that its code could have changed. ``views``: memory's
    pieces as views of linear memory, not copies (memory cannot grow until they are gone)."""
    module = instance.compiled.module
    function_index = {id(function): index for index, function in enumerate(instance.functions)}

    def reference(value: object, where: str) -> int | None:
        if value is None:
            return None
        index = function_index.get(id(value)) if isinstance(value, Function) else None
        if index is None:
            raise SnapshotError(f"{where} holds a reference that is not one of its functions")
        return index

    memories = []
    for memory in instance.memories[len(instance.memories) - len(module.memories) :]:
        data = memoryview(memory.data)
        pieces = [
            [
                offset,
                data[offset : offset + CHUNK] if views else bytes(data[offset : offset + CHUNK]),
            ]
            for offset in range(0, len(data), CHUNK)
            if data[offset : offset + CHUNK] != _ZERO_CHUNK
        ]
        if not views:
            data.release()
        memories.append([memory.pages, pieces])

    globals_ = []
    for index, global_type in _mutable_globals(instance):
        value = _global_value(instance, index)
        valtype = global_type.valtype
        if valtype is ValType.F32:
            value = f32_to_bits(value)
        elif valtype is ValType.F64:
            value = f64_to_bits(value)
        elif valtype is ValType.V128:
            value = value.to_bytes(16, "little")
        elif valtype.is_ref:
            value = reference(value, f"global {index}")
        globals_.append([index, value])

    tables = []
    first_table = len(instance.tables) - len(module.tables)
    for offset, table in enumerate(instance.tables[first_table:]):
        where = f"table {first_table + offset}"
        tables.append([table.size, [reference(value, where) for value in table.elements]])

    namespace = instance.namespace
    return {
        "memories": memories,
        "globals": globals_,
        "tables": tables,
        "dropped_data": [
            index
            for index, segment in enumerate(module.datas)
            if segment.data and not namespace["DS"][index]
        ],
        "dropped_elements": [
            index
            for index, segment in enumerate(module.elements)
            if segment.init and not namespace["ES"][index]
        ],
    }


def install(instance: Instance, state: object) -> None:
    """Make ``instance`` (fresh, its start function not run) hold ``state``."""
    if not isinstance(state, dict) or set(state) != set(_PARTS):
        raise SnapshotError(f"a snapshot is a map of exactly {', '.join(_PARTS)}")
    writes = [check(instance, state[part]) for part, check in _PARTS.items()]
    for write in writes:
        write()


# -- the checks: each returns the write it allows ----------------------------------------------


def _list(value: object, where: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise SnapshotError(f"{where} must be a list")
    if length is not None and len(value) != length:
        raise SnapshotError(f"{where} must have {length} entries, not {len(value)}")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise SnapshotError(f"{where} must be an integer from {low} to {high}")
    return value


def _check_memories(instance: Instance, value: object) -> Any:
    module = instance.compiled.module
    defined = instance.memories[len(instance.memories) - len(module.memories) :]
    entries = _list(value, "memories", len(defined))
    plans = []
    for number, (memory, entry) in enumerate(zip(defined, entries, strict=True)):
        where = f"memory {number}"
        pages, pieces = _list(entry, where, 2)
        pages = _int(pages, f"{where}'s size", memory.pages, memory.max_pages)
        offsets: dict[int, bytes] = {}
        for piece in _list(pieces, f"{where}'s pieces"):
            offset, data = _list(piece, f"a piece of {where}", 2)
            offset = _int(offset, f"a piece's offset in {where}", 0, pages * PAGE_SIZE - CHUNK)
            if offset % CHUNK or offset in offsets:
                raise SnapshotError(f"{where} has a piece at {offset}, not a free chunk's start")
            if type(data) is not bytes or len(data) != CHUNK:
                raise SnapshotError(f"a piece of {where} must be {CHUNK} bytes")
            offsets[offset] = data
        plans.append((memory, pages, offsets))

    def write() -> None:
        for memory, pages, offsets in plans:
            if memory.grow(pages - memory.pages) < 0:
                raise SnapshotError(f"memory cannot grow to {pages} pages")
            data = memory.data
            for offset in range(0, len(data), CHUNK):
                piece = offsets.get(offset, _ZERO_CHUNK)
                if data[offset : offset + CHUNK] != piece:
                    data[offset : offset + CHUNK] = piece

    return write


def _check_globals(instance: Instance, value: object) -> Any:
    mutable = dict(_mutable_globals(instance))
    entries = _list(value, "globals", len(mutable))
    values: dict[int, Any] = {}
    function_count = len(instance.functions)
    for entry in entries:
        index, raw = _list(entry, "a global", 2)
        if type(index) is not int or index not in mutable or index in values:
            raise SnapshotError(f"global {index!r} is not a mutable global of the module, once")
        where = f"global {index}"
        valtype = mutable[index].valtype
        if valtype in _UNSIGNED_BITS:
            bits = _int(raw, where, 0, (1 << _UNSIGNED_BITS[valtype]) - 1)
            if valtype is ValType.F32:
                values[index] = f32_from_bits(bits)
            elif valtype is ValType.F64:
                values[index] = f64_from_bits(bits)
            else:
                values[index] = bits
        elif valtype is ValType.V128:
            if type(raw) is not bytes or len(raw) != 16:
                raise SnapshotError(f"{where} must be 16 bytes (a v128)")
            values[index] = int.from_bytes(raw, "little")
        elif valtype is ValType.FUNCREF:
            values[index] = None if raw is None else _int(raw, where, 0, function_count - 1)
        elif valtype is ValType.EXTERNREF and raw is None:
            values[index] = None
        else:
            raise SnapshotError(f"{where} is a {valtype.text}, which a snapshot cannot hold")

    def write() -> None:
        namespace = instance.namespace
        for index, raw in values.items():
            is_reference = mutable[index].valtype is ValType.FUNCREF and raw is not None
            settled = instance.functions[raw] if is_reference else raw
            cell = namespace.get(f"G{index}")
            if isinstance(cell, GlobalCell):
                cell.value = settled
            else:
                namespace[f"g{index}"] = settled

    return write


def _check_tables(instance: Instance, value: object) -> Any:
    module = instance.compiled.module
    defined = instance.tables[len(instance.tables) - len(module.tables) :]
    entries = _list(value, "tables", len(defined))
    function_count = len(instance.functions)
    plans = []
    for number, (table, entry) in enumerate(zip(defined, entries, strict=True)):
        where = f"table {number}"
        size, elements = _list(entry, where, 2)
        size = _int(size, f"{where}'s size", table.size, table.max_size)
        elements = _list(elements, f"{where}'s elements", size)
        funcref = table.type.elem_type is ValType.FUNCREF
        for element in elements:
            if element is None:
                continue
            if not funcref or type(element) is not int or not 0 <= element < function_count:
                raise SnapshotError(f"{where} holds {element!r}, not a function index or null")
        plans.append((table, elements))

    def write() -> None:
        functions = instance.functions
        for table, elements in plans:
            # the same list object: compiled code holds it
            table.elements[:] = [None if e is None else functions[e] for e in elements]

    return write


def _check_dropped(kind: str, namespace_key: str, empty: object) -> Any:
    def check(instance: Instance, value: object) -> Any:
        segments = instance.namespace[namespace_key]
        indices = set()
        for index in _list(value, f"dropped_{kind}"):
            indices.add(_int(index, f"a dropped {kind} segment", 0, len(segments) - 1))

        def write() -> None:
            for index in indices:
                segments[index] = empty

        return write

    return check


_PARTS = {
    "memories": _check_memories,
    "globals": _check_globals,
    "tables": _check_tables,
    "dropped_data": _check_dropped("data", "DS", b""),
    "dropped_elements": _check_dropped("elements", "ES", ()),
}


def _mutable_globals(instance: Instance) -> list[tuple[int, Any]]:
    module = instance.compiled.module
    imported = len(instance.compiled.info.global_types) - len(module.globals)
    return [
        (imported + offset, defined.type)
        for offset, defined in enumerate(module.globals)
        if defined.type.mutable
    ]


def _global_value(instance: Instance, index: int) -> Any:
    cell = instance.namespace.get(f"G{index}")
    return cell.value if isinstance(cell, GlobalCell) else instance.namespace[f"g{index}"]

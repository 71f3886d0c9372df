"""The split lowering: a huge function as pieces that CPython compiles one at a time.

CPython's compiler needs about 300 bytes per token of source (measured on 3.11: 20,000
lines of ``y = (y + 1) & 0xFFFFFFFF`` take 70 MiB), all at once for one function, and a
guest loads a module within a memory bound of 64 MiB plus 256 bytes per byte of module. A
function of a few hundred kilobytes of dense code would need more than that. This lowering
is the flattened one (``flat``) with its segments grouped into *chunks* of at most
``CHUNK_LINES`` lines (long segments are cut), each chunk its own Python function, compiled
on its own::

    def f3(l0):                                 def _c3_1(V, _b):
        V = [None] * 41                             l0, t7, b5_0 = V[1], V[2], V[3]
        V[1] = l0                                   while _b in {4, 5, 9}:
        _b = 0                                          ... segments 4, 5 and 9 ...
        while _b >= 0:                              V[1], V[2], V[3] = l0, t7, b5_0
            _b = _C[_b](V, _b)  # its chunk         return _b
        return V[0]

The function's variables (locals, temporaries, label values) live in the list ``V``: a chunk
takes the ones it names into Python locals when control enters it and puts them back when
control leaves it for another chunk, so inside a chunk the code is the flattened code.
Returning, a chunk leaves the results in ``V[0]`` and returns -1.

The pieces become one code object all the same (the code cache and instances see one per
function): the chunks' code objects are constants of a small driver that ``exec``s them and
defines the function. Metered chunks get the instance's fuel cell as the function does.

It is slower (a jump between chunks copies the variables the chunks name), so it is only for
functions whose source would be too big to compile in one piece: see ``lowering``.
"""

from __future__ import annotations

import builtins
import re
from types import CodeType

from .compiler import COMPILED_FILENAME, ModuleInfo, Operand, zero
from .flat import FlatCompiler

CHUNK_LINES = 2_000
"""Lines of segments per chunk: compiling one takes a few MiB."""

SEGMENT_LINES = 500
"""A segment longer than this is cut, so that chunks can be made of whole segments."""

_VARIABLE = re.compile(r"\b(?:[lt]\d+|b\d+_\d+)\b")  # what ``V`` holds: see the compiler
_DEFAULT = re.compile(r"\bk\d+\b")  # constants passed as default arguments (NaNs)
_PLACEHOLDER = -0.123456789e-300  # in the driver's constants, where the chunks' code goes
RESULTS = 0  # the slot of ``V`` that holds the results


class SplitCompiler(FlatCompiler):
    """Compiles one function in chunks (see the module docstring)."""

    def __init__(
        self,
        info: ModuleInfo,
        func_index: int,
        fuel: bool = False,
        chunk_lines: int = CHUNK_LINES,
        segment_lines: int = SEGMENT_LINES,
    ) -> None:
        super().__init__(info, func_index, fuel)
        self.chunk_lines = chunk_lines
        self.cut_after = segment_lines
        self.chunks: list[str] = []  # the source of each chunk
        self.driver = ""  # the source of what defines the function from the chunks

    def _cut(self) -> int:
        if self.frames and not self.frame.unreachable:  # (none left after the last end)
            self._start_segment(self._new_segment(), falls_in=True)
        return len(self.out) + self.cut_after

    def _return_lines(self, values: list[Operand]) -> list[str]:
        if not values:
            return ["return -1"]
        if len(values) == 1:
            return [f"V[{RESULTS}] = {values[0].expr}", "return -1"]
        return [f"V[{RESULTS}] = ({', '.join(v.expr for v in values)},)", "return -1"]

    def _assemble(self) -> str:
        ranges = self._segment_lines()
        groups: list[list[tuple[int, int, int]]] = [[]]
        size = 0
        for segment in ranges:
            if size >= self.chunk_lines:
                groups.append([])
                size = 0
            groups[-1].append(segment)
            size += segment[2] - segment[1]
        slots: dict[str, int] = {}
        chunk_of: dict[int, str] = {}
        for number, group in enumerate(groups):
            name = f"_c{self.func_index}_{number}"
            self.chunks.append(self._chunk(name, sorted(group), slots))
            chunk_of.update((segment, name) for segment, _, _ in group)
        self.driver = self._driver(chunk_of, slots)
        return "\n".join([*self.chunks, self.driver])

    def _chunk(self, name: str, ranges: list[tuple[int, int, int]], slots: dict[str, int]) -> str:
        """The source of one chunk: its segments' lines in a dispatch loop of their own."""
        names: dict[str, None] = {}
        defaults: dict[str, None] = {}
        for _, start, end in ranges:
            for line in self.out[start:end]:
                names.update(dict.fromkeys(_VARIABLE.findall(line)))
                if "k" in line:
                    defaults.update(dict.fromkeys(_DEFAULT.findall(line)))
        for variable in names:
            slots.setdefault(variable, len(slots) + 1)  # slot 0 holds the results
        params = ["V", "_b", *(f"{k}={self.defaults[k]}" for k in defaults)]
        lines = [f"def {name}({', '.join(params)}):"]
        if self.assigned_globals:
            lines.append("    global " + ", ".join(f"g{i}" for i in sorted(self.assigned_globals)))
        lines += _copy_lines(names, slots, load=True)
        ids = ", ".join(str(segment) for segment, _, _ in ranges)
        lines.append(f"    while _b in {{{ids}}}:")
        self._dispatch(ranges, 0, len(ranges), 8, lines)
        lines += _copy_lines(names, slots, load=False)
        lines.append("    return _b")
        return self._wrap(lines, name)

    def _driver(self, chunk_of: dict[int, str], slots: dict[str, int]) -> str:
        """The source that defines the function: it runs the chunks' code (the placeholder
        becomes their code objects), then defines the function that dispatches to them."""
        lines = [f"for _code in {_PLACEHOLDER!r}: exec(_code)", "del _code"]
        if self.fuel:
            for name in dict.fromkeys(chunk_of.values()):
                lines.append(f"{name} = WITH_CELL(_fuel_{name}(), FUEL_CELL)")
                lines.append(f"del _fuel_{name}")
        table = ", ".join(chunk_of[segment] for segment in range(len(chunk_of)))
        params = [f"l{i}" for i in range(len(self.type.params))] + [f"_C=({table},)"]
        main = [f"def f{self.func_index}({', '.join(params)}):"]
        main.append(f"    V = [None] * {len(slots) + 1}")
        first = len(self.type.params)
        given = [f"l{i}" for i in range(first) if f"l{i}" in slots]
        for i in sorted(x for x in self.read_locals if x >= first):
            if f"l{i}" in slots:  # (a local read only into a dropped value is named nowhere)
                main.append(f"    V[{slots[f'l{i}']}] = {zero(self.declared_locals[i - first])}")
        if given:
            main.append(f"    {', '.join(f'V[{slots[n]}]' for n in given)}, = {', '.join(given)},")
        main += ["    _b = 0", "    while _b >= 0:", "        _b = _C[_b](V, _b)"]
        main.append(f"    return V[{RESULTS}]")
        return "\n".join(lines) + "\n" + self._wrap(main)

    def code(self) -> CodeType:
        chunks = tuple(
            builtins.compile(
                source, f"{COMPILED_FILENAME} {self.func_index}, part {number}>", "exec"
            )
            for number, source in enumerate(self.chunks)
        )
        driver = builtins.compile(self.driver, f"{COMPILED_FILENAME} {self.func_index}>", "exec")
        constants = tuple(chunks if c == _PLACEHOLDER else c for c in driver.co_consts)
        return driver.replace(co_consts=constants)


def _copy_lines(names: dict[str, None], slots: dict[str, int], load: bool) -> list[str]:
    """Statements that take ``names`` from their slots of ``V`` (or put them back), 100 to a
    line."""
    ordered = list(names)
    lines = []
    for start in range(0, len(ordered), 100):
        part = ordered[start : start + 100]
        variables = ", ".join(part) + ","
        cells = ", ".join(f"V[{slots[n]}]" for n in part) + ","
        lines.append(f"    {variables} = {cells}" if load else f"    {cells} = {variables}")
    return lines

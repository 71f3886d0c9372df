"""Plain-text tables for the bench commands: first column left, the rest right-aligned."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def render(table: Sequence[Sequence[str]], rules_after: Collection[int] = (0,)) -> list[str]:
    """The lines of ``table`` (its first row the header), with a rule of dashes after each
    row index in ``rules_after``."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines: list[str] = []
    for index, line in enumerate(table):
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index in rules_after:
            lines.append("-" * len(lines[0]))
    return lines


def guest_load_report(
    table: Sequence[Sequence[str]], repeats: int, notes: Sequence[str], problems: Sequence[str]
) -> str:
    """The text of a table of loads timed by guests: the table, what its figures are
    (``notes``), then each problem."""
    lines = render(table)
    lines += [
        "",
        f"medians of {repeats} load(s), each in a new guest process, as the guest timed them",
        *notes,
        *(f"!! {problem}" for problem in problems),
    ]
    return "\n".join(lines) + "\n"

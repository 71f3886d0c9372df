"""The exit statuses of ``kindling run``: one ``IntEnum``, and the one table that explains them.

Exit codes are API (Firecracker's ``FcExitCode``): scripts branch on them. Each status is
declared once, here, as a ``CliExitCode`` member, and what it stands for once, in
``MEANINGS`` next to it::

{exit_statuses}

Everything else is drawn from these two: ``Ending.status`` (``host.endings``) is a member;
``kindling run --help`` and the docstrings of this module, ``host.endings`` and ``host.cli``
show ``text_table()`` (put in at import); the README's table is ``markdown_table()`` (``python
-m host.exitcodes --markdown`` prints it), and tests/host/test_endings.py checks that the
README holds exactly that. As with any wrapper, a program's own exit code can coincide with
one of these statuses; the report's ``ending`` and the one-line reason on stderr (printed
for every ending but ``exited``) tell them apart.

Not to be confused with Kindling's other exit numbers:

- ``Ending.exit_code``: the *program's* exit code, the n of ``exited(n)`` (WASI allows any
  u32); ``kindling run`` passes it through as its status, up to 255.
- ``host.transport.ExitStatus``: how a guest *process* ended, as ``wait4`` reported it (its
  exit code or signal, CPU time, peak memory); ``host.exits`` turns it into an ``Ending``.
- ``protocol.messages.GuestExitStatus``: the codes a guest process exits with to tell the
  host what the frames could not (it ran out of memory, the host broke the protocol).

This module imports only ``enum`` and ``typing``: ``kindling``'s start-up builds its help
from it.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

EXIT_CODE_CAP = 255
"""``exited(n)`` gives status n up to this; a larger code (WASI allows any u32) gives this."""


class CliExitCode(enum.IntEnum):
    """The exit status of ``kindling run`` for everything but ``exited(n)`` (which is n).

    ``SIGNAL_BASE`` is a base: ``signalled(n)`` exits with ``SIGNAL_BASE + n``."""

    USAGE = 2
    STOPPED = 118
    HOST_FAILURE = 119
    LOAD_FAILURE = 120
    TRAPPED = 121
    LIMIT_MEMORY = 122
    LIMIT_CPU = 123
    LIMIT_WALL = 124
    LIMIT_FUEL = 125
    LIMIT_OUTPUT = 126
    PROTOCOL_ERROR = 127
    SIGNAL_BASE = 128


class Meaning(NamedTuple):
    """One row of the table: the ending a status stands for (its text form, as
    ``Ending.text`` gives it, with a placeholder in parentheses where the ending has a
    detail: ``trapped(kind)``; None for the command's own failures) and what it means."""

    ending: str | None
    meaning: str


EXITED = Meaning(
    "exited(n)",
    f"the program exited with code n (returning from `_start` is 0, and so is a successful "
    f"`--invoke`); above {EXIT_CODE_CAP}: {EXIT_CODE_CAP}",
)
"""The row of ``exited(n)``, the one ending whose status is no member: it is n itself."""

MEANINGS: dict[CliExitCode, Meaning] = {
    CliExitCode.USAGE: Meaning(
        None, "usage error: a bad option or `ARGS`, an unreadable module file, an invalid config"
    ),
    CliExitCode.STOPPED: Meaning("stopped", "the host stopped the guest (Ctrl-C, SIGTERM)"),
    CliExitCode.HOST_FAILURE: Meaning(None, "the host could not start a guest process at all"),
    CliExitCode.LOAD_FAILURE: Meaning(
        "load_failure(stage)",
        "the module could not be loaded; `stage` is `read`, `decode`, `validation`, `link`, "
        "`compile` or `export` (no such export to call)",
    ),
    CliExitCode.TRAPPED: Meaning(
        "trapped(kind)",
        "a Wasm trap; `kind` is e.g. `unreachable`, `integer_divide_by_zero`, "
        "`call_stack_exhausted`",
    ),
    CliExitCode.LIMIT_MEMORY: Meaning(
        "limit(memory)",
        "over the memory bound: `--memory` + 64 MiB + 256 bytes per byte of code",
    ),
    CliExitCode.LIMIT_CPU: Meaning("limit(cpu)", "used up its `--cpu` seconds of CPU time"),
    CliExitCode.LIMIT_WALL: Meaning(
        "limit(wall)", "ran out of `--timeout`, or of `--load-timeout` while loading"
    ),
    CliExitCode.LIMIT_FUEL: Meaning("limit(fuel)", "used up its `--fuel` budget"),
    CliExitCode.LIMIT_OUTPUT: Meaning(
        "limit(output)", "wrote more than `--max-output` bytes to stdout and stderr together"
    ),
    CliExitCode.PROTOCOL_ERROR: Meaning(
        "protocol_error", "the guest broke the host-guest protocol and was killed"
    ),
    CliExitCode.SIGNAL_BASE: Meaning(
        "signalled(n)", "the guest process died of signal n (e.g. 9, SIGKILL: status 137)"
    ),
}
"""What each status means, one line each; words in backticks are code (Markdown keeps the
backticks, the plain-text table drops them)."""


def status_text(code: CliExitCode | None) -> str:
    """How a status reads in the tables: ``120``; ``128+n``; ``n`` for ``exited(n)``."""
    if code is None:
        return "n"
    if code is CliExitCode.SIGNAL_BASE:
        return f"{int(code)}+n"
    return str(int(code))


def rows() -> list[tuple[str, str, str]]:
    """(ending, status, meaning) for ``exited(n)`` and then every member, by status; the
    command's own failures have the ending ``-``."""
    table = [(EXITED.ending or "-", status_text(None), EXITED.meaning)]
    for code in CliExitCode:
        ending, meaning = MEANINGS[code]
        table.append((ending or "-", status_text(code), meaning))
    return table


def text_table(width: int = 76) -> str:
    """The table as plain text, meanings wrapped to ``width``: ``kindling run --help`` and
    the docstrings of this module, ``host.endings`` and ``host.cli`` show it."""
    lines = []
    for ending, status, meaning in rows():
        head = f"  {ending:<21} {status:<6} "
        for line in _wrap(meaning.replace("`", ""), width - len(head)):
            lines.append(head + line)
            head = " " * len(head)
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's table (Markdown), exactly as the README must hold it."""
    lines = ["| ending | exit status | meaning |", "|---|---|---|"]
    for ending, status, meaning in rows():
        cell = ending if ending == "-" else f"`{ending}`"
        lines.append(f"| {cell} | {status} | {meaning} |")
    return "\n".join(lines) + "\n"


def with_table(docstring: str | None) -> str:
    """``docstring`` with ``{exit_statuses}`` replaced by the table, indented as a literal
    block: how the modules that document the statuses put it in their ``__doc__``."""
    indented = "\n".join("  " + line for line in text_table().splitlines())
    return (docstring or "").replace("{exit_statuses}", indented)


def _wrap(text: str, width: int) -> list[str]:
    # textwrap would cost kindling's start-up 1.5 ms; the meanings are single-spaced words.
    lines = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return lines


__doc__ = with_table(__doc__)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m host.exitcodes --markdown   (prints the README's table)")
    sys.stdout.write(markdown_table())

"""How a guest ended: exactly one ``Ending`` per guest, and the CLI exit status for each.

Every guest ends in exactly one of these ways (text form as in reports and DESIGN.md), and
``kindling run`` exits with the status beside it (``Ending.status``, a ``CliExitCode`` of
``host.exitcodes``, where this table and its words are declared)::

{exit_statuses}
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, field

from protocol.messages import Limit as Limit  # the vocabulary is the protocol's; re-exported

from .exitcodes import EXIT_CODE_CAP, CliExitCode, with_table

__doc__ = with_table(__doc__)


class EndingKind(enum.StrEnum):
    EXITED = "exited"
    LOAD_FAILURE = "load_failure"
    TRAPPED = "trapped"
    LIMIT = "limit"
    PROTOCOL_ERROR = "protocol_error"
    SIGNALLED = "signalled"
    STOPPED = "stopped"


STATUS_OF_KIND = {
    EndingKind.LOAD_FAILURE: CliExitCode.LOAD_FAILURE,
    EndingKind.TRAPPED: CliExitCode.TRAPPED,
    EndingKind.PROTOCOL_ERROR: CliExitCode.PROTOCOL_ERROR,
    EndingKind.STOPPED: CliExitCode.STOPPED,
}
"""The status of each kind of ending with one status (not ``exited``, ``limit``,
``signalled``)."""
STATUS_OF_LIMIT = {
    Limit.MEMORY: CliExitCode.LIMIT_MEMORY,
    Limit.CPU: CliExitCode.LIMIT_CPU,
    Limit.WALL: CliExitCode.LIMIT_WALL,
    Limit.FUEL: CliExitCode.LIMIT_FUEL,
    Limit.OUTPUT: CliExitCode.LIMIT_OUTPUT,
}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Ending:
    """How one guest ended. ``detail`` is the exit code, trap kind, limit, load stage or
    signal number (None for ``protocol_error`` and ``stopped``); ``message`` explains it.
    ``backtrace``: for a trap, the Wasm functions it went through, innermost first, one
    line each (``wasm function 12 (name)``; names escaped at the host's gate)."""

    kind: EndingKind
    detail: int | str | None = None
    message: str = ""
    backtrace: tuple[str, ...] = field(default=(), compare=False)

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def exited(cls, code: int) -> Ending:
        return cls(EndingKind.EXITED, code, f"the program exited with code {code}")

    @classmethod
    def load_failure(cls, stage: str, message: str) -> Ending:
        return cls(EndingKind.LOAD_FAILURE, stage, message)

    @classmethod
    def trapped(cls, kind: str, message: str, backtrace: tuple[str, ...] = ()) -> Ending:
        return cls(EndingKind.TRAPPED, kind, message, backtrace)

    @classmethod
    def limit(cls, which: Limit, message: str) -> Ending:
        return cls(EndingKind.LIMIT, which, message)

    @classmethod
    def protocol_error(cls, message: str) -> Ending:
        return cls(EndingKind.PROTOCOL_ERROR, None, message)

    @classmethod
    def signalled(cls, number: int) -> Ending:
        return cls(
            EndingKind.SIGNALLED, number, f"the guest process was killed by {_signal_name(number)}"
        )

    @classmethod
    def stopped(cls, message: str) -> Ending:
        return cls(EndingKind.STOPPED, None, message)

    # -- views --------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """``exited(3)``, ``trapped(unreachable)``, ``protocol_error``."""
        return self.kind.value if self.detail is None else f"{self.kind.value}({self.detail})"

    def __str__(self) -> str:
        return self.text

    @property
    def succeeded(self) -> bool:
        """The program exited with code 0 (``exited(0)``)."""
        return self.exit_code == 0

    @property
    def exit_code(self) -> int | None:
        """The program's exit code when it exited; None for every other ending."""
        return (
            self.detail if self.kind is EndingKind.EXITED and isinstance(self.detail, int) else None
        )

    @property
    def status(self) -> int:
        """The exit status of ``kindling run`` for this ending: a ``CliExitCode``, but for
        ``exited(n)`` (n, at most ``EXIT_CODE_CAP``) and ``signalled(n)`` (``SIGNAL_BASE`` + n)."""
        if self.kind is EndingKind.EXITED:
            assert isinstance(self.detail, int)
            return min(self.detail, EXIT_CODE_CAP)
        if self.kind is EndingKind.LIMIT:
            return STATUS_OF_LIMIT[Limit(str(self.detail))]
        if self.kind is EndingKind.SIGNALLED:
            assert isinstance(self.detail, int)
            return CliExitCode.SIGNAL_BASE + self.detail
        return STATUS_OF_KIND[self.kind]

    def reason(self) -> str:
        """One line for people: ``guest trapped: integer divide by zero``."""
        headline = {
            EndingKind.EXITED: "guest exited",
            EndingKind.LOAD_FAILURE: f"cannot load the module ({self.detail})",
            EndingKind.TRAPPED: "guest trapped",
            EndingKind.LIMIT: f"guest hit its {self.detail} limit",
            EndingKind.PROTOCOL_ERROR: "guest broke the protocol and was killed",
            EndingKind.SIGNALLED: "guest process died",
            EndingKind.STOPPED: "guest stopped",
        }[self.kind]
        detail = " ".join(self.message.split())  # one line, whatever the message held
        return f"{headline}: {detail}" if detail else headline

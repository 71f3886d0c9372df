"""How a guest ended: exactly one ``Ending`` per guest, and the CLI exit status for each.

Every guest ends in exactly one of these ways (text form as in reports and DESIGN.md):

==========================  =========================================================  ======
ending                      meaning                                                    status
==========================  =========================================================  ======
``exited(n)``               the program exited with code n (returning from ``_start``  n [1]_
                            is 0; a successful ``--invoke`` is ``exited(0)``)
``load_failure(stage)``     the module could not be loaded: ``decode`` (malformed),    120
                            ``validation`` (invalid), ``link`` (an import is missing
                            or mismatched), ``compile``, ``export`` (no such export
                            to call; arguments that do not fit it are a usage error)
``trapped(kind)``           a Wasm trap: ``unreachable``, ``integer_divide_by_zero``,  121
                            ``out_of_bounds_memory``, ``call_stack_exhausted``, ...
``limit(memory)``           the memory bound: the budget + 64 MiB + 256 bytes per      122
                            byte of code (``protocol.limits``)
``limit(cpu)``              CPU seconds (RLIMIT_CPU, SIGXCPU)                          123
``limit(wall)``             the wall-clock timeout (the host SIGKILLs the guest)       124
``limit(fuel)``             the fuel budget                                            125
``limit(output)``           the console output quota                                   126
``protocol_error``          the guest broke the frame protocol and was killed          127
``signalled(n)``            the guest process died of signal n (e.g. 11, SIGSEGV)      128+n
``stopped``                 the host stopped it (e.g. Ctrl-C)                          118
==========================  =========================================================  ======

.. [1] codes 0-255 pass through; a code above 255 (WASI allows any u32) gives 255, and
   the report holds the exact code.

Other statuses of ``kindling run`` itself: 2 for a usage error (bad option, unreadable
module file, invalid config), 119 when the host could not start a guest at all. As with any
wrapper, a guest's own exit code can coincide with one of these; the report's ``ending`` and
the one-line reason on stderr (printed for every ending but ``exited``) tell them apart.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from protocol.messages import Limit as Limit  # the vocabulary is the protocol's; re-exported


class EndingKind(enum.StrEnum):
    EXITED = "exited"
    LOAD_FAILURE = "load_failure"
    TRAPPED = "trapped"
    LIMIT = "limit"
    PROTOCOL_ERROR = "protocol_error"
    SIGNALLED = "signalled"
    STOPPED = "stopped"


STATUS_USAGE = 2
STATUS_STOPPED = 118
STATUS_HOST_FAILURE = 119
STATUS_LOAD_FAILURE = 120
STATUS_TRAPPED = 121
STATUS_LIMIT = {
    Limit.MEMORY: 122,
    Limit.CPU: 123,
    Limit.WALL: 124,
    Limit.FUEL: 125,
    Limit.OUTPUT: 126,
}
STATUS_PROTOCOL_ERROR = 127
STATUS_SIGNAL_BASE = 128


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Ending:
    """How one guest ended. ``detail`` is the exit code, trap kind, limit, load stage or
    signal number (None for ``protocol_error`` and ``stopped``); ``message`` explains it."""

    kind: EndingKind
    detail: int | str | None = None
    message: str = ""

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def exited(cls, code: int) -> Ending:
        return cls(EndingKind.EXITED, code, f"the program exited with code {code}")

    @classmethod
    def load_failure(cls, stage: str, message: str) -> Ending:
        return cls(EndingKind.LOAD_FAILURE, stage, message)

    @classmethod
    def trapped(cls, kind: str, message: str) -> Ending:
        return cls(EndingKind.TRAPPED, kind, message)

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
    def exit_code(self) -> int | None:
        """The program's exit code when it exited; None for every other ending."""
        return (
            self.detail if self.kind is EndingKind.EXITED and isinstance(self.detail, int) else None
        )

    @property
    def status(self) -> int:
        """The exit status of ``kindling run`` for this ending (see the module docstring)."""
        if self.kind is EndingKind.EXITED:
            assert isinstance(self.detail, int)
            return min(self.detail, 255)
        if self.kind is EndingKind.LIMIT:
            return STATUS_LIMIT[Limit(str(self.detail))]
        if self.kind is EndingKind.SIGNALLED:
            assert isinstance(self.detail, int)
            return STATUS_SIGNAL_BASE + self.detail
        return {
            EndingKind.LOAD_FAILURE: STATUS_LOAD_FAILURE,
            EndingKind.TRAPPED: STATUS_TRAPPED,
            EndingKind.PROTOCOL_ERROR: STATUS_PROTOCOL_ERROR,
            EndingKind.STOPPED: STATUS_STOPPED,
        }[self.kind]

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

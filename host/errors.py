"""What the host's Python API raises.

::

    GuestError                  anything about one guest; never about the host itself
    ├── GuestStartError         the guest process could not be started at all (exec failed)
    │   └── TemplateError       a template could not fork one (it died, refused, misbehaved)
    ├── IllegalAction           *your* code asked for something the guest's state forbids
    │   │                       (invoke before boot, boot twice)
    │   └── LifecycleError      ... or the sandbox's state (invoke while paused)
    ├── GuestEnded              the guest is over; ``ending`` says how (it broke, hit a
    │                           limit, exited, failed to load, was stopped)
    ├── GuestTrapped            the call trapped; ``ending`` is ``trapped(kind)``; the guest
    │                           lives on and may be invoked again
    └── InvokeRefused           the guest cannot make this call; ``reason`` says whether
                                there is no such export or the arguments do not fit (the
                                text names the parameter); the guest lives on

A guest never raises anything else through the API: frames that break the protocol, crashes
and limits all become a ``GuestEnded`` with the matching ending.
"""

from __future__ import annotations

from protocol.messages import RefusalReason

from .endings import Ending


class GuestError(Exception):
    """Base of everything the host API raises about a guest."""


class GuestStartError(GuestError):
    """The guest process could not be started (the interpreter could not be executed)."""


class IllegalAction(GuestError):
    """The action is not allowed in the guest's current state."""


class GuestEnded(GuestError):
    """The guest has ended (or is ending) with ``ending``."""

    def __init__(self, ending: Ending) -> None:
        self.ending = ending
        super().__init__(ending.reason())


class GuestTrapped(GuestError):
    """The invoked function trapped; the guest can still be used."""

    def __init__(self, ending: Ending) -> None:
        self.ending = ending
        super().__init__(ending.reason())


class InvokeRefused(GuestError):
    """The guest refused the call: no such exported function (``RefusalReason.NO_EXPORT``),
    or arguments that do not fit (``ARGUMENTS``: wrong count, not an integer, out of range;
    the text names the parameter)."""

    def __init__(self, message: str, reason: RefusalReason) -> None:
        self.reason = reason
        super().__init__(message)

"""What a guest does with each request: which room serves it, and what it leaves behind.

::

    request    allowed when                  served by          leaves
    ───────    ────────────                  ─────────          ──────
    Load       nothing is loaded yet         loading.load       LoadedModule ──▶ Loaded
                 then, until the next request arrives: Precompiler.run_until (idle)
    Boot       loaded, not booted            booting.boot       BootedInstance ──▶ Ready
    Invoke     booted                        running.invoke     Result | Refused | an ending
    Shutdown   always                        (here)             the guest process exits
    any other  never                         HostProtocolError: the host broke the protocol

Every reply, and every frame of a request, goes out through ``Replies`` (``replies``). The
rooms in the order one request may visit them:

- ``loading``: hardening and the loading bound before the module is decoded; decode,
  validate, compile, each failure ``LoadFailed(stage)``; the code cache (``caching``).
- ``precompiler``: functions translated ahead of their first call while the guest waits.
- ``booting``: the metered translation, dropping what only loading needed, the kernel
  limits (``confinement``, which decides them for guests and templates alike), instantiation.
- ``running``: an export invoked; how running ended, as a reply.

``handle`` returns whether the guest process should keep serving: it stops after ``Exited``,
``LoadFailed``, ``LimitReached``, a failed ``Boot`` and an internal error, because the
instance is then finished or in no state to go on.
"""

from __future__ import annotations

import select

from protocol.messages import Boot, Invoke, Load, Message, Shutdown

from . import confinement
from .booting import BootedInstance, TakeOnce, boot, start_problem
from .channel import Channel, HostProtocolError
from .console import ConsoleWriter
from .loading import LoadedModule, load
from .replies import Replies, StopServing
from .running import invoke


class Session:
    """The state of one guest process: its channel, console, module and instance.
    ``template``: a template process, which forks guests after Boot (``guestproc.template``)."""

    def __init__(self, channel: Channel, template: bool = False) -> None:
        self.channel = channel
        self.template = template
        self.console = ConsoleWriter(channel)
        self.replies = Replies(channel, self.console)
        self.loaded: LoadedModule | None = None
        self.booted: BootedInstance | None = None

    def handle(self, message: Message) -> bool:
        """Serve one request; False when the guest process should exit now."""
        try:
            # Invoke first, then Shutdown: a forked guest's requests are Invokes, then a
            # Shutdown, and each class named here is an object whose page that guest would
            # copy for itself.
            if isinstance(message, Invoke) and self.booted is not None:
                self.replies.start(message.id)
                invoke(self.replies, self.booted, message)
            elif isinstance(message, Shutdown):
                return False
            elif isinstance(message, Load) and self.loaded is None:
                self.replies.start(message.id)
                self.loaded = load(self.replies, message, self.template)
                if self.template:
                    confinement.template_loaded()
            elif isinstance(message, Boot) and self.loaded is not None and self.booted is None:
                self.replies.start(message.id)
                # The metered cache entry (up to 32 MiB) and the snapshot must be gone
                # before the running bound is set: no frame may keep the message that
                # carries them, so only the one-shot holders do, and boot() takes them.
                problem = start_problem(message, self.loaded, self.template)
                if problem is not None:
                    raise HostProtocolError(problem)
                entry, snapshot = TakeOnce(message.cached), TakeOnce(message.snapshot)
                message = message.replaced(cached=None, snapshot=None)
                self.booted = boot(
                    self.replies, self.loaded, message, entry, snapshot, self.template
                )
            else:
                raise HostProtocolError(f"{message.TYPE} is not allowed now")
        except StopServing:
            return False
        return True

    def idle(self) -> None:
        """Use the time until the next request arrives (it is waiting in the pipe then):
        between Load and Boot only (``guest.serve_requests`` calls it then)."""
        precompiler = self.loaded.precompiler if self.loaded is not None else None
        if precompiler is not None and self.booted is None:
            precompiler.run_until(lambda: _readable(self.channel.read_fd))

    @property
    def out_of_memory_frame(self) -> bytearray:
        """The frame that says the request being served ran out of memory (empty before the
        first request)."""
        return self.replies.out_of_memory_frame


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])

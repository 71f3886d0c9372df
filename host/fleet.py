"""``Fleet``: what a ``Host`` runs on behalf of its sandboxes -- templates, live guests, the
watchdog and the subscribers to their events.

::

    Sandbox ── fork(module, config) ──▶ Fleet ── one Template per (module digest, config)
       │                                  │          (started on first use, shared, replaced
       │◀── Guest, handshaken, watched ───┤           when it dies)
       ├── release(guest) ───────────────▶│── Watchdog: every live guest's memory and CPU
       └── publish(event) ───────────────▶│── listeners: the host's subscribers
                                          │── StrayHunt: processes in the templates'
                                                PID namespaces that nobody asked for

A ``Sandbox`` reaches the host only through these three doors, so the host's own state
(its sandboxes by name) and the fleet's (templates, guests by pid) are each held once.
"""

from __future__ import annotations

import asyncio
import contextlib

from protocol.codeentry import module_digest

from .config import GuestConfig
from .endings import Ending
from .guest import Guest
from .holder import StrayHunt
from .lifecycle import Event, Listener
from .stdio import ConsoleSink, StdinSource
from .template import FORK_TIMEOUT, Template
from .transport import Launcher
from .uids import GuestUids
from .watchdog import Watchdog

STRAY_SWEEP_SECONDS = 5.0
"""Seconds between the fleet's hunts for processes its templates forked unasked."""
STRAY_GRACE_SECONDS = FORK_TIMEOUT + 5.0
"""Seconds a process in a template's namespace may stay unknown to the host before it is
killed as a stray: longer than a fork request may take to be answered."""

TemplateKey = tuple[bytes, str, str | None]  # (module digest, configuration as JSON, init)


class Fleet:
    """Templates, guests and the watchdog of one host. ``cache_dir``: the code cache's
    directory (None: compile afresh every time)."""

    def __init__(self, cache_dir: str | None, launcher: Launcher | None, uids: GuestUids) -> None:
        self.cache_dir = cache_dir
        self._launcher = launcher
        self._uids = uids
        self._templates: dict[TemplateKey, Template] = {}
        self._retired: list[Template] = []  # closed after they died; their holders live on
        # templates still loading and starting their module, and the task doing it
        self._starting: dict[TemplateKey, tuple[Template, asyncio.Task[None]]] = {}
        self._guests: dict[int, Guest] = {}  # pid -> live guest
        self._listeners: list[Listener] = []
        self.watchdog = Watchdog()
        self._watching: asyncio.Task[None] | None = None
        self.strays = StrayHunt(STRAY_GRACE_SECONDS)
        self.stray_sweep_seconds = STRAY_SWEEP_SECONDS
        self._hunting: asyncio.Task[None] | None = None

    def start_watching(self) -> None:
        loop = asyncio.get_running_loop()
        self._watching = loop.create_task(self.watchdog.run())
        self._hunting = loop.create_task(self._hunt_strays())

    async def _hunt_strays(self) -> None:
        """Every ``STRAY_SWEEP_SECONDS``, end what our templates forked unasked."""
        while True:
            await asyncio.sleep(self.stray_sweep_seconds)
            holders = [t.holder for t in self._all_templates() if t.holder is not None]
            with contextlib.suppress(OSError):  # /proc unreadable this once: the next pass
                self.strays.sweep(holders, self._guests.__contains__)

    def _all_templates(self) -> list[Template]:
        starting = [template for template, _ in self._starting.values()]
        return [*self._templates.values(), *self._retired, *starting]

    # -- events -------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    # -- guests -------------------------------------------------------------------------------

    async def fork(
        self,
        module: bytes,
        config: GuestConfig,
        console: ConsoleSink | None,
        stdin: StdinSource | None = None,
        init: str | None = None,
        key: TemplateKey | None = None,
    ) -> Guest:
        """A guest of ``module`` with ``config``, forked from their template (started first if
        need be, with ``init`` run in its throwaway guest: ``Template.boot``; ``key``: as
        ``has_template``), past its handshake and watched. ``GuestEnded`` if the module cannot
        be loaded or started (the template's ending), ``GuestStartError`` / ``OSError`` if no
        guest could be made."""
        template = await self.template(module, config, init, key)
        guest = await template.fork(console=console, stdin=stdin)
        if guest.pid is not None:
            self._guests[guest.pid] = guest  # known from now on (``StrayHunt``)
        try:
            await guest.handshake()
        except BaseException:
            self.release(guest)
            raise
        if guest.pid is not None:
            self.watchdog.watch(guest)
        return guest

    def release(self, guest: Guest) -> None:
        """The guest has ended: stop watching it."""
        self.watchdog.forget(guest)
        if guest.pid is not None and self._guests.get(guest.pid) is guest:
            del self._guests[guest.pid]

    # -- templates ----------------------------------------------------------------------------

    @staticmethod
    def key(module: bytes, config: GuestConfig, init: str | None = None) -> TemplateKey:
        """What names the template of ``module``, ``config`` and ``init``. Making it hashes
        the module and dumps the configuration (about 70 us for the 31 KiB demo module): a
        caller that asks for the same template over and over (a function, on every
        request) makes it once and passes it as ``key``."""
        return (module_digest(module), config.model_dump_json(), init)

    def has_template(
        self,
        module: bytes,
        config: GuestConfig,
        init: str | None = None,
        key: TemplateKey | None = None,
    ) -> bool:
        """Whether a template of ``module``, ``config`` and ``init`` (whose ``key`` is
        made if not given) is ready to fork now."""
        template = self._templates.get(key or self.key(module, config, init))
        return template is not None and template.alive

    async def template(
        self,
        module: bytes,
        config: GuestConfig,
        init: str | None = None,
        key: TemplateKey | None = None,
    ) -> Template:
        """The template of ``module``, ``config`` and ``init`` (``key``: as ``has_template``),
        started first if need be."""
        key = key or self.key(module, config, init)
        digest = key[0]
        template = self._templates.get(key)
        if template is not None and template.alive:
            return template
        if template is not None:  # it died: its guests live on; a new one forks the next
            self._templates.pop(key, None)
            await template.close()
            self._retired.append(template)  # the holder of its guests' namespace stays
        starting = self._starting.get(key)
        if starting is None:
            # Its guests take ids of their own (host.uids).
            launcher = (self._launcher or Launcher.default()).with_ids(self._uids.template_env())
            template = Template(
                config, cache_dir=self.cache_dir, launcher=launcher, watchdog=self.watchdog
            )
            # Loading and the start function are watched like a guest's run.
            self.watchdog.watch(template.guest)
            booting = asyncio.get_running_loop().create_task(template.boot(module, digest, init))
            starting = self._starting[key] = (template, booting)
            booting.add_done_callback(lambda task: self._started(key, template, task))
        await asyncio.shield(starting[1])
        return starting[0]

    def _started(self, key: TemplateKey, template: Template, booting: asyncio.Task[None]) -> None:
        """A template's boot ended: keep it if it is ready. A failure reaches every launch
        that waited for it through ``booting``; it is marked seen here, as there may be none."""
        self._starting.pop(key, None)
        self.watchdog.forget(template.guest)  # it runs no module code from now on
        if not booting.cancelled():
            booting.exception()
        if template.alive:
            template.known_pid = self._guests.__contains__
            self._templates[key] = template

    def templates(self) -> list[Template]:
        return list(self._templates.values())

    # -- closing ------------------------------------------------------------------------------

    async def stop_watching(self) -> None:
        for task in (self._watching, self._hunting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watching = self._hunting = None

    def kill_starting(self) -> None:
        """Kill every template still starting (a start function that loops, say), so that
        the launches waiting for it fail and their sandboxes end."""
        for template, _ in list(self._starting.values()):
            template.end_start(Ending.stopped("the host is closing"))

    async def close_templates(self) -> None:
        """Shut every template down, then end the holders of their guests' PID namespaces
        (the guests are stopped by now: any left would end with their holder)."""
        # Templates still starting were killed (``kill_starting``): wait for their boots to
        # see it, or the boot tasks outlive the host, and a loop that then cancels them
        # waits forever for an exit it no longer watches.
        booting = [task for _, task in self._starting.values()]
        await asyncio.gather(*booting, return_exceptions=True)
        templates = [*self._templates.values(), *self._retired]
        await asyncio.gather(*(t.close() for t in self._templates.values()))
        for template in templates:
            await template.release()
        self._templates.clear()
        self._retired.clear()

"""The states of one guest process as the host sees it, and the one table of legal changes.

A dependency-free leaf (like supervisord's ``states.py``): ``host.guest`` moves between these
states, and only as ``TRANSITIONS`` allows. The state is that of the request the guest is
working on::

    SPAWNED ─Hello─▶ CONNECTED ─Load─▶ LOADING ─Loaded─▶ LOADED ─Boot─▶ BOOTING ─Ready─▶ READY
       └──────────────────────Hello (a guest forked from a template: begin(forked=True))──▶┘
                                                                 RUNNING ◀──Invoke──┘ ▲
                                                                    └─Result, Trapped,─┘
                                                                      Refused
    LOADING, BOOTING, RUNNING ──a reply that ends the program──▶ EXITING
        (Exited, LoadFailed, LimitReached; Trapped from Boot, or an internal error)
    CONNECTED, LOADED, READY ──stop()──▶ STOPPING
    every state ──the process is reaped──▶ ENDED

Beside the state, which follows each request, ``Stage`` says how far the guest's *module* has
come; it only moves forward (``Guest.begin(forked=True)`` starts a guest at ``BOOTED``).
"""

from __future__ import annotations

import enum


class GuestState(enum.Enum):
    SPAWNED = "spawned"
    CONNECTED = "connected"
    LOADING = "loading"
    LOADED = "loaded"
    BOOTING = "booting"
    READY = "ready"
    RUNNING = "running"
    EXITING = "exiting"
    STOPPING = "stopping"
    ENDED = "ended"


class Stage(enum.IntEnum):
    """How far the module has come in a guest, in order: a later stage implies the earlier."""

    NOTHING = 0  # no Load sent yet
    LOAD_SENT = 1  # submit_load: the module is (being) loaded
    BOOT_SENT = 2  # submit_boot: the configuration is fixed
    CODE_STARTED = 3  # Starting: module code may have run, so the guest may be subverted
    BOOTED = 4  # Ready (or forked from a template): the running memory bound holds


S = GuestState
TRANSITIONS: dict[GuestState, frozenset[GuestState]] = {
    S.SPAWNED: frozenset({S.CONNECTED, S.READY, S.ENDED}),  # READY: forked from a template
    S.CONNECTED: frozenset({S.LOADING, S.STOPPING, S.ENDED}),
    S.LOADING: frozenset({S.LOADED, S.EXITING, S.ENDED}),
    S.LOADED: frozenset({S.BOOTING, S.STOPPING, S.ENDED}),
    S.BOOTING: frozenset({S.READY, S.EXITING, S.ENDED}),
    S.READY: frozenset({S.RUNNING, S.STOPPING, S.ENDED}),
    S.RUNNING: frozenset({S.READY, S.EXITING, S.ENDED}),
    S.EXITING: frozenset({S.ENDED}),
    S.STOPPING: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}

IDLE_STATES = frozenset({S.CONNECTED, S.LOADED, S.READY})
"""Waiting for the host's next request: ``stop()`` asks it to shut down."""
WORKING_STATES = frozenset({S.LOADING, S.BOOTING, S.RUNNING})
"""Working on a request: frames that belong to it may arrive."""
RUNNING_CODE_STATES = frozenset({S.BOOTING, S.RUNNING})
"""Module code may be running (a start function, an export): console and stdin traffic."""
LEAVING_STATES = frozenset({S.EXITING, S.STOPPING, S.ENDED})
"""On the way out, or gone: nothing new may be asked of it."""

"""Kindling's host: the trusted side that starts guests, holds them to their limits and
says how each one ended. It never imports ``guestproc`` and never decodes a module.

::

    kindling run (cli.py, run_cli.py)          your code
              │  options: configkeys.py           │
              └──────────────┬────────────────────┘
                             ▼          GuestConfig (config.py): limits, args, env
    Host / Sandbox (supervisor.py)   launch, invoke, pause, stop, metrics; restarts, events;
    SyncHost (sync.py)                lifecycle.py: states, policies
    Fleet (fleet.py)                 templates per module + config, live guests, watchdog
    Template (template.py)            one per module + config: forks ready guests
    run / run_guest (api.py) ── RunReport(ending, results, timings, peak memory)
    Watchdog (watchdog.py)      every guest's own memory and CPU, for Host and kindling run
                             ▼
    Guest (guest.py)            the process, requests, deadlines, endings
      conversation.py             frames from the guest: checked, routed, replies settled
      gueststate.py               the states and their one transition table; the stages
      pipeline.py                 requests in flight, and which replies answer which
      output.py, stdinserver.py   console quota and rate; stdin on request
      cachesink.py, codecache.py  code cache entries out and in; the files
      exits.py, endings.py        how a guest ended; the Ending value; errors.py
      exitcodes.py                kindling run's exit statuses (CliExitCode)
    GuestConnection (connection.py)   frames: cap, msgpack, pydantic models (protocol.models)
    GuestProcess (transport.py)       posix_spawn, pipes, pidfd, signals, wait4
    ConsoleSink / StdinSource (stdio.py)   where output goes, where stdin comes from

The public names below are re-exported lazily: ``import host`` itself loads nothing heavy
(``kindling``'s start-up depends on that).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import RunReport, run, run_guest
    from .endings import Ending, EndingKind, Limit
    from .errors import (
        GuestEnded,
        GuestError,
        GuestStartError,
        GuestTrapped,
        IllegalAction,
        InvokeRefused,
    )
    from .exitcodes import CliExitCode
    from .guest import Guest, GuestState
    from .lifecycle import Event, LifecycleError, Restart, RestartPolicy, State
    from .stdio import BytesStdin, CapturedConsole, HostStdin, NoStdin, StdioConsole
    from .supervisor import Host, Metrics, Sandbox
    from .sync import SyncHost, SyncSandbox
    from .template import Template, TemplateError
    from .transport import ExitStatus, GuestProcess, Launcher

_WHERE = {
    "RunReport": "api",
    "run": "api",
    "run_guest": "api",
    "Ending": "endings",
    "EndingKind": "endings",
    "Limit": "endings",
    "CliExitCode": "exitcodes",
    "GuestEnded": "errors",
    "GuestError": "errors",
    "GuestStartError": "errors",
    "GuestTrapped": "errors",
    "IllegalAction": "errors",
    "InvokeRefused": "errors",
    "Guest": "guest",
    "GuestState": "guest",
    "Event": "lifecycle",
    "LifecycleError": "lifecycle",
    "Restart": "lifecycle",
    "RestartPolicy": "lifecycle",
    "State": "lifecycle",
    "Host": "supervisor",
    "Metrics": "supervisor",
    "Sandbox": "supervisor",
    "SyncHost": "sync",
    "SyncSandbox": "sync",
    "Template": "template",
    "TemplateError": "template",
    "BytesStdin": "stdio",
    "CapturedConsole": "stdio",
    "HostStdin": "stdio",
    "NoStdin": "stdio",
    "StdioConsole": "stdio",
    "ExitStatus": "transport",
    "GuestProcess": "transport",
    "Launcher": "transport",
}

__all__ = [
    "BytesStdin",
    "CapturedConsole",
    "CliExitCode",
    "Ending",
    "EndingKind",
    "Event",
    "ExitStatus",
    "Guest",
    "GuestEnded",
    "GuestError",
    "GuestProcess",
    "GuestStartError",
    "GuestState",
    "GuestTrapped",
    "Host",
    "HostStdin",
    "IllegalAction",
    "InvokeRefused",
    "Launcher",
    "LifecycleError",
    "Limit",
    "Metrics",
    "NoStdin",
    "Restart",
    "RestartPolicy",
    "RunReport",
    "Sandbox",
    "State",
    "StdioConsole",
    "SyncHost",
    "SyncSandbox",
    "Template",
    "TemplateError",
    "run",
    "run_guest",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'host' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

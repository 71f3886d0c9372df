"""``kindling doctor``: what isolation this machine allows, and what is in force for guests.

The first half reads the kernel's settings from the host; the second runs
``guestproc.doctor`` -- a real process hardened exactly as a guest is -- and reports each step
it took and the outcome of each forbidden action it then tried.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from .transport import Launcher
from .uids import DEFAULT_GUEST_UIDS, SubordinateIds, find_subordinate_ids

SECCOMP_ARCHES = ("x86_64",)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


_UNSHARE_PROBE = """
import ctypes, os, sys
flags = 0x40000000 | 0x08000000 | 0x00020000  # net, ipc, mount
if os.geteuid() != 0:
    flags |= 0x10000000  # and user, which makes the others possible unprivileged
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.unshare(flags) == 0 else ctypes.get_errno())
"""


def _try_unshare(root: bool, userns: str | None) -> str:
    """Whether a process started here may enter new namespaces: tried, in a throwaway one."""
    done = subprocess.run([sys.executable, "-c", _UNSHARE_PROBE], capture_output=True, timeout=30)
    if done.returncode == 0:
        return "yes (as root)" if root else "yes (through a user namespace)"
    if not root and userns is not None and int(userns or 0) == 0:
        return "no: user namespaces are off (user.max_user_namespaces = 0)"
    return f"no: unshare failed ({os.strerror(done.returncode)})"


def available() -> dict[str, str]:
    """What the kernel and this host process allow, step by step."""
    userns = _read("/proc/sys/user/max_user_namespaces")
    actions = _read("/proc/sys/kernel/seccomp/actions_avail") or ""
    root = os.geteuid() == 0
    return {
        "rlimits": "yes",
        "own process group": "yes",
        "namespaces": _try_unshare(root, userns),
        "uid drop": _uid_drop(root),
        "no_new_privs": "yes",
        "seccomp": "yes"
        if "errno" in actions and platform.machine() in SECCOMP_ARCHES
        else f"no: seccomp actions {actions or 'unknown'}, machine {platform.machine()}",
        "pidfd": "yes" if hasattr(os, "pidfd_open") else "no (exit is polled)",
    }


def _uid_drop(root: bool) -> str:
    if root:
        return (
            "yes: running as root, each template's guests take a uid of their own "
            f"({DEFAULT_GUEST_UIDS.start}-{DEFAULT_GUEST_UIDS.stop - 1})"
        )
    found = find_subordinate_ids()
    if isinstance(found, SubordinateIds):
        return (
            "yes: each template's guests take subordinate ids of their own, mapped by "
            f"newuidmap: {found.describe()}"
        )
    return (
        f"no: guests share this host's uid {os.geteuid()} ({found}); namespaces and the "
        "filters keep them apart"
    )


def in_force(launcher: Launcher | None = None) -> dict[str, Any]:
    """Run the hardened probe process; its report (steps, forbidden actions, uid). It is
    started on its own, with no host to map subordinate ids into it: it keeps the host's
    uid, or drops root as a guest does."""
    base = launcher or Launcher.default()
    if base.subordinate_ids is not None:
        base = base.with_ids({})
    done = subprocess.run(
        [*base.with_module("guestproc.doctor").argv],
        env=dict(base.env),
        capture_output=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        reason = done.stderr.decode(errors="replace").strip() or f"status {done.returncode}"
        raise RuntimeError(f"the probe process failed: {reason}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


START_MODULE = b"(module (func $start) (start $start))"


async def _template_start_probe(launcher: Launcher | None) -> str:
    """Ask a real template to run a start function itself, as templates did before issue
    12; blocked when it refuses (a throwaway guest runs start functions instead)."""
    from .config import GuestConfig
    from .errors import GuestEnded
    from .template import Template

    template = Template(GuestConfig(timeout=30), launcher=launcher)
    guest = template.guest
    try:
        await guest.handshake()
        await guest.submit_load(START_MODULE)
        await guest.submit_boot()  # no start=restore: run the start function here
    except GuestEnded as exc:
        return f"blocked: {exc.ending.reason()}"
    finally:
        await template.close()
        await template.release()
    return "ALLOWED"


async def _pid_namespace_probe(launcher: Launcher | None) -> str:
    """Fork a real guest and read its pids: in its template's own PID namespace, or in
    the host's, where it could name every process."""
    from .supervisor import Host

    async with Host(cache=False, launcher=launcher) as host:
        sandbox = await host.launch(b"(module)")
        pid = sandbox.pid
        status = _read(f"/proc/{pid}/status") or ""
        await sandbox.stop()
    pids = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
    if len(pids) >= 2:
        return f"blocked: a forked guest is pid {pids[-1]} of its template's own PID namespace"
    return (
        f"ALLOWED: forked guests are in the host's PID namespace (pid {pids[0] if pids else '?'})"
    )


def template_probes(launcher: Launcher | None = None) -> dict[str, str]:
    """What real templates and their guests do: probes run from the host."""

    async def both() -> dict[str, str]:
        return {
            "start in template": await _template_start_probe(launcher),
            "name a pid outside": await _pid_namespace_probe(launcher),
        }

    return asyncio.run(both())


def doctor_command(as_json: bool, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    here = available()
    try:
        probe = in_force()
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
        out.write(f"kindling doctor: {exc}\n")
        return 1
    try:
        probe["forbidden"].update(template_probes())
    except Exception as exc:  # whatever stops a real template: say so, and fail
        out.write(f"kindling doctor: the template probes could not run: {exc}\n")
        return 1
    escaped = [
        action for action, outcome in probe["forbidden"].items() if outcome.startswith("ALLOWED")
    ]
    if as_json:
        document = {"available": here, **probe, "all_blocked": not escaped}
        out.write(json.dumps(document, indent=1) + "\n")
        return 0 if not escaped else 1
    lines = ["available on this machine"]
    lines += [f"  {step:<20} {value}" for step, value in here.items()]
    lines.append("in force for guests (a probe process hardened as a guest is)")
    lines += [f"  {step:<20} {value}" for step, value in probe["steps"].items()]
    lines.append(f"  {'uid now':<20} {probe['uid']}")
    lines.append("forbidden actions, tried from inside")
    lines += [f"  {action:<20} {outcome}" for action, outcome in probe["forbidden"].items()]
    lines.append("")
    lines.append(
        "every forbidden action was blocked"
        if not escaped
        else f"NOT BLOCKED: {', '.join(escaped)}"
    )
    out.write("\n".join(lines) + "\n")
    return 0 if not escaped else 1

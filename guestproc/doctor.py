"""``python -S -P -m guestproc.doctor``: harden a process exactly as a guest is hardened, then
try what a guest must not be able to do, and print what happened as one JSON line.

``kindling doctor`` runs this (a real, separate process) to report what is in force. Every
probe should come back ``blocked: ...``; ``ALLOWED`` means that layer is missing here.
``--step NAME`` applies one step alone and tries what that step by itself forbids (the
tests use it to prove each layer, not just the sum).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable

from . import hardening, sandbox

PTRACE_ATTACH = 16
F_SETOWN, F_SETSIG = 8, 10
MAP_ANONYMOUS = 0x20
MAPPED = 1024 * 1024


def _namespaces(directory: int) -> dict[str, str]:
    """Which namespaces we are in, read through ``/proc/self/ns`` opened as ``directory``
    (the root may be empty by now)."""
    return {kind: os.readlink(kind, dir_fd=directory) for kind in ("net", "ipc", "mnt", "user")}


def _probe(action: Callable[[], object]) -> str:
    try:
        action()
    except OSError as exc:
        return f"blocked: {exc.strerror or exc}"
    except Exception as exc:
        return f"blocked: {type(exc).__name__}: {exc}"
    return "ALLOWED"


def _fork() -> None:
    if os.fork() == 0:
        os._exit(0)


def _ptrace_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(PTRACE_ATTACH, os.getppid(), None, None) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _map_shared() -> None:
    """Shared memory is not counted by RLIMIT_DATA, nor as the guest's own by the watchdog."""
    mmap.mmap(-1, MAPPED, flags=mmap.MAP_SHARED).close()


def _map_raw(flags: int) -> None:
    """``mmap`` called the way attacker code would, straight through libc."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
    ]  # fmt: skip
    read_write = mmap.PROT_READ | mmap.PROT_WRITE
    address = libc.mmap(None, MAPPED, read_write, flags | MAP_ANONYMOUS, -1, 0)
    if address is None or address == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    libc.munmap(ctypes.c_void_p(address), MAPPED)


def _raise_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1, hard + 1))


def _fcntl(command: int, argument: int) -> None:
    """``fcntl`` on the doctor's own stdout, through libc as attacker code would call it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.fcntl(1, command, argument) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _write_file() -> None:
    with open(f"/tmp/kindling-doctor-{os.getpid()}", "w") as file:
        file.write("escaped")


def probe() -> dict[str, object]:
    directory = os.open("/proc/self/ns", os.O_RDONLY | os.O_DIRECTORY)
    before = _namespaces(directory)
    sandbox.restrict()
    # The loader's hardening, step by step (``hardening.harden_loader``), to read the
    # namespaces before its filter takes readlink away.
    steps = {"namespaces": hardening.enter_namespaces()}
    steps["root"] = hardening.empty_root()
    steps["uid"] = hardening.drop_privileges()
    after = _namespaces(directory)
    os.close(directory)
    steps["new namespaces"] = ", ".join(k for k in before if before[k] != after[k]) or "none"
    steps["no_new_privs"] = hardening.no_new_privs()
    steps["seccomp"] = hardening.install_seccomp(hardening.LOADER)
    # What the loader's filter alone stops: no file opens once the module's bytes are read.
    write_open = _probe(lambda: os.close(os.open(os.devnull, os.O_WRONLY)))
    read_open = _probe(lambda: open("/etc/hostname", "rb").close())
    steps["running filter"] = hardening.harden_running()
    forbidden = {
        "write a file": _probe(_write_file),
        "open to write (loading)": write_open,
        "open to read (loading)": read_open,
        "open a file to read": _probe(lambda: open("/etc/hostname", "rb").close()),
        "see the host's files": _probe(lambda: os.stat("/etc/hostname")),
        "create a process": _probe(_fork),
        "run a program": _probe(lambda: os.execv("/bin/true", ["true"])),
        "open a socket": _probe(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "signal the host": _probe(lambda: os.kill(os.getppid(), 0)),
        "trace the host": _probe(_ptrace_parent),
        "become root": _probe(lambda: os.setuid(0)),
        "raise a limit": _probe(_raise_limit),
        "read host's limits": _probe(lambda: resource.prlimit(os.getppid(), resource.RLIMIT_CPU)),
        "F_SETOWN to host": _probe(lambda: _fcntl(F_SETOWN, os.getppid())),
        "F_SETSIG SIGKILL": _probe(lambda: _fcntl(F_SETSIG, signal.SIGKILL)),
        **_memory_probes(),
    }
    return {"steps": steps, "forbidden": forbidden, "uid": os.getuid()}


def _memory_probes() -> dict[str, str]:
    """Memory a guest must not be able to map: none of it would count against its bound."""
    return {
        "map shared memory": _probe(_map_shared),
        "map shared via libc": _probe(lambda: _map_raw(mmap.MAP_SHARED)),
        "map grow-down": _probe(lambda: _map_raw(hardening.MAP_PRIVATE | hardening.MAP_GROWSDOWN)),
    }


def probe_step(step: str) -> dict[str, object]:
    """Apply one step alone and try what that step (and no other) forbids."""
    if step == "rlimits":
        scratch = os.open("/tmp", os.O_TMPFILE | os.O_WRONLY, 0o600)
        sandbox.restrict()
        return {"write to an open file": _probe(lambda: os.write(scratch, b"x"))}
    if step == "namespaces":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def connect() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass

        reachable = _probe(connect)
        done = hardening.enter_namespaces()
        return {"step": done, "before": reachable, "reach the host's network": _probe(connect)}
    if step == "uid":
        done = hardening.drop_privileges()
        return {
            "step": done,
            "read a root-only file": _probe(lambda: open("/etc/shadow", "rb").close()),
            "become root": _probe(lambda: os.setuid(0)),
        }
    if step == "no_new_privs":
        return {"step": hardening.no_new_privs()}
    if step == "seccomp":
        before = _probe(_map_shared)
        done = hardening.install_seccomp(hardening.RUNNING)
        return {
            "step": done,
            "open a socket": _probe(lambda: socket.socket()),
            "create a process": _probe(_fork),
            "before": before,
            "map private memory": _probe(lambda: _map_raw(hardening.MAP_PRIVATE)),
            **_memory_probes(),
        }
    raise SystemExit(f"unknown step {step!r}")


def main() -> int:
    out = os.dup(1)
    step = sys.argv[2] if sys.argv[1:2] == ["--step"] and len(sys.argv) == 3 else None
    sandbox.enter((out,))
    report = probe() if step is None else probe_step(step)
    os.write(out, (json.dumps(report) + "\n").encode())
    os._exit(0)  # no interpreter teardown under the running filter


if __name__ == "__main__":
    sys.exit(main())

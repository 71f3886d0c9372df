"""How a template makes processes: guests whose parent is the host, and first of all the
holder of their PID namespace.

::

    Load arrives ─▶ harden_loader: uid dropped, unshare(CLONE_NEWPID), LOADER filter
                ─▶ hold_namespace: clone_parent() ─▶ the holder: process 1 of the
                                                     namespace, a child of the host
                   Namespace(pid) ──control socket──▶ the host
                ─▶ the module's first byte is decoded

The holder is made before the template reads a byte of the module, so that every process
the template makes afterwards -- the guests it is asked for and, should the engine have a
bug an attacker can use, any it is not -- is in the holder's namespace: when the holder
dies (the host ends it, or the host dies and its death signal fires), the kernel kills
every one of them. For the same reason the host believes the template's first control
message only: it was sent before anything untrusted was read.

``os.fork`` has no flags argument: ``clone_parent`` makes the system call itself, wrapped in
CPython's own before- and after-fork hooks, which is all ``os.fork`` adds. A template never
starts threads, so forking it is safe.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import time

import msgpack  # type: ignore[import-untyped]

from protocol.messages import Namespace

from . import hardening, sandbox

CLONE_PARENT = 0x00008000
_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220}
# clone() returns into a copy of this very ctypes call: a PyDLL keeps the GIL held across it,
# as os.fork does. The functions are looked up here, once: a lookup made in each child
# (ctypes finds a function on first use, then stores it on the library) would write to
# pages it shares with the template.
_syscall = ctypes.PyDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long
_before_fork = ctypes.pythonapi.PyOS_BeforeFork
_after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child
_after_fork_parent = ctypes.pythonapi.PyOS_AfterFork_Parent
_CLONE_FLAGS = ctypes.c_ulong(CLONE_PARENT | signal.SIGCHLD)
_CLONE_NUMBER = _SYS_CLONE.get(os.uname().machine)
_CLONE = None if _CLONE_NUMBER is None else ctypes.c_long(_CLONE_NUMBER)


def clone_parent() -> int:
    """``os.fork()``, except that the child's parent is our parent: 0 in the child, the
    child's pid in the template. ``OSError`` if the kernel refuses."""
    if _CLONE is None:
        raise OSError(f"no clone system call number known for {os.uname().machine}")
    _before_fork()
    pid = _syscall(_CLONE, _CLONE_FLAGS, None, None, None, None)
    if pid == 0:
        _after_fork_child()
        return 0
    error = ctypes.get_errno()
    _after_fork_parent()
    if pid < 0:
        raise OSError(error, f"clone: {os.strerror(error)}")
    return int(pid)


own_namespace = False
"""The template's guests are forked into the holder's PID namespace."""

_channels: tuple[int, int] | None = None  # (the pipe from the host, the control socket)


def expect_holder(from_host: int, control_fd: int) -> None:
    """This process is a template: ``hold_namespace`` will tell the host on ``control_fd``,
    and the holder will watch ``from_host`` (which hangs up once the host is gone)."""
    global _channels
    _channels = (from_host, control_fd)


def hold_namespace() -> None:
    """In a template, once it is hardened for loading and before it decodes the module:
    make the holder of its guests' PID namespace, if it has one of its own
    (``hardening.pid_namespace_for_children``), and tell the host its pid (or None) in
    the first control message. Once only."""
    global _channels, own_namespace
    if _channels is None:
        return
    from_host, control_fd = _channels
    _channels = None
    holder = None
    if hardening.children_have_own_pid_namespace:
        with contextlib.suppress(OSError):  # no holder: the host is told None
            holder = clone_parent()
        if holder == 0:
            _be_holder(from_host)
        own_namespace = holder is not None
    os.write(control_fd, msgpack.packb(Namespace(id=0, pid=holder).wire()))


def _be_holder(from_host: int) -> None:
    """The namespace's init, a child of the host that only waits. Guests forked after it
    are processes 2, 3, ... of that namespace: they can name no process outside it (not the
    host, not the template, not another template's guests), and signals reach them as they
    reach any process (an init ignores those it has no handler for)."""
    try:
        sandbox.set_parent_death_signal()
        # Its parent is outside its namespace (getppid() says 0): the host died before
        # the death signal was set if its pipe has hung up (only it held the other end).
        hung_up = select.poll()
        hung_up.register(from_host, 0)
        if not hung_up.poll(0):
            os.closerange(0, 1 << 16)
            hardening.harden_running()
            while True:
                time.sleep(3600)
    finally:
        os._exit(0)

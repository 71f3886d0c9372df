"""Hardening beyond rlimits: namespaces, an unprivileged uid, no_new_privs, seccomp.

The steps, in the order they are applied (after ``sandbox.enter`` has closed inherited
descriptors and put the process in its own group, and ``sandbox.restrict`` has set the
rlimits)::

    namespaces   unshare: new network (no interfaces but a down loopback), IPC and mount
                 namespaces; a new user namespace too where the kernel allows it
    root         in that mount namespace: an empty read-only tmpfs as the root, the host's
                 filesystem detached (pivot_root)
    uid          started as root: setgroups([]), setresgid/setresuid to the uid the host
                 named (each template its own: host.uids), or nobody (65534); in the
                 user namespace entered at start-up (sandbox.enter_user_namespace) and
                 mapped by an ordinary user's host: to 1, its subordinate ids
    pid ns       a template: a new PID namespace for its children (its holder, its guests)
    no_new_privs PR_SET_NO_NEW_PRIVS (already set by ``sandbox.enter``; checked here)
    seccomp      an allowlist filter: any other system call fails with EPERM

Every step is on where the kernel permits it; what could not be done is recorded, never
fatal (``kindling doctor`` reports both). Seccomp filters stack: a template installs
``LOADER`` (it must still receive descriptors and fork, but opens no file); each guest
forked from it
adds ``RUNNING``, the few calls a running guest makes -- no open, no socket, no fork or
exec, no kill or ptrace. A guest started by exec gets both, ``RUNNING`` at Boot. Both allow
``mmap`` for private memory only (``ARGUMENT_RULES``): memory a guest maps is always
counted by its ``RLIMIT_DATA`` and is its own.

Only x86_64 has a system call table here; elsewhere the seccomp step reports that it is
unavailable rather than guess numbers.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import struct

from protocol.messages import GUEST_UID_VARIABLE, SUBORDINATE_INSIDE_ID

from . import sandbox

NOBODY = 65534
CLONE_NEWPID = 0x20000000

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_NO_NEW_PRIVS = 39
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_X86_64 = {
    "read": 0, "write": 1, "close": 3, "fstat": 5, "poll": 7, "lseek": 8, "mmap": 9,
    "mprotect": 10, "munmap": 11, "brk": 12, "rt_sigaction": 13, "rt_sigprocmask": 14,
    "rt_sigreturn": 15, "ioctl": 16, "pread64": 17, "readv": 19, "writev": 20, "select": 23,
    "sched_yield": 24, "mremap": 25, "madvise": 28, "dup": 32, "dup2": 33, "nanosleep": 35,
    "getitimer": 36, "alarm": 37, "setitimer": 38, "getpid": 39, "sendto": 44,
    "recvfrom": 45, "sendmsg": 46,
    "recvmsg": 47, "getsockname": 51, "getsockopt": 55, "clone": 56, "exit": 60, "uname": 63, "fcntl": 72, "getcwd": 79,
    "readlink": 89, "getrlimit": 97, "getrusage": 98, "sysinfo": 99, "getuid": 102,
    "getgid": 104, "geteuid": 107, "getegid": 108, "setpgid": 109, "getppid": 110,
    "sigaltstack": 131, "prctl": 157, "setrlimit": 160, "gettid": 186, "futex": 202,
    "getdents64": 217, "set_tid_address": 218, "restart_syscall": 219,
    "clock_gettime": 228, "clock_getres": 229, "clock_nanosleep": 230, "exit_group": 231,
    "openat": 257, "newfstatat": 262, "pselect6": 270, "ppoll": 271, "set_robust_list": 273,
    "dup3": 292, "prlimit64": 302, "seccomp": 317, "getrandom": 318, "statx": 332,
    "rseq": 334, "close_range": 436,
}  # fmt: skip
SYSCALLS = {"x86_64": _X86_64}
AUDIT_ARCH = {"x86_64": 0xC000003E}

RUNNING = frozenset(
    {
        "read", "write", "close", "fstat", "newfstatat", "lseek", "mmap", "mprotect",
        "munmap", "brk", "mremap", "madvise", "rt_sigaction", "rt_sigprocmask",
        "rt_sigreturn", "sigaltstack", "select", "pselect6", "poll", "ppoll", "getitimer",
        "setitimer", "alarm", "nanosleep", "clock_nanosleep", "clock_gettime",
        "clock_getres", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
        "getegid", "futex", "sched_yield", "getrusage", "getrlimit", "prlimit64",
        "setrlimit", "exit", "exit_group", "restart_syscall", "getrandom", "fcntl", "pread64",
    }
)  # fmt: skip
"""What a running guest needs: pipes, memory, signals and timers for the console, clocks,
limits (it only lowers them), exit. ``pread64`` reads ``/proc/self/status`` (opened at
start-up) until the running limits are set: a guest that loads a code cache entry takes
this filter before it, at Load (``confinement``). After that it has only pipes, where
``pread`` fails."""

MAP_TYPE = 0x03  # MAP_SHARED 0x01, MAP_PRIVATE 0x02, MAP_SHARED_VALIDATE 0x03
MAP_PRIVATE = 0x02
MAP_GROWSDOWN = 0x0100
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 1030

ARGUMENT_RULES: dict[str, tuple[int, int, frozenset[int]]] = {
    "mmap": (3, MAP_TYPE | MAP_GROWSDOWN, frozenset({MAP_PRIVATE})),
    "prlimit64": (0, 0xFFFFFFFF, frozenset({0})),
    "fcntl": (
        1,
        0xFFFFFFFF,
        frozenset({F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC}),
    ),
}
"""Calls allowed only with certain arguments: (argument index, mask, the values it may have
under the mask; the argument's low 32 bits are checked, all that these calls read).

- ``mmap`` must map private memory that does not grow down: ``RLIMIT_DATA`` counts neither
  shared nor grow-down mappings, and a shared one's pages would not be the guest's own in
  the watchdog's figure (USS) either. Nothing in a guest or template maps shared memory
  (CPython and glibc map private memory only).
- ``prlimit64`` names the calling process only (pid 0, as glibc's ``getrlimit`` and
  ``setrlimit`` do): another process's limits are not a guest's to read or set (a sibling's
  ``RLIMIT_CPU`` at zero kills it; the host's ``RLIMIT_NOFILE`` at 3 breaks it).
- ``fcntl`` may duplicate a descriptor and read or set its flags (blocking mode,
  close-on-exec), nothing else: ``F_SETOWN`` and ``F_SETSIG`` with ``O_ASYNC`` would send
  any signal to any process of the guest's uid; leases, notifications and locks are not
  needed.

Every filter here applies them."""

LOADER = RUNNING | frozenset(
    {
        "ioctl", "readv",
        "writev", "uname", "sysinfo", "dup", "dup2", "dup3", "close_range", "sendmsg",
        "recvmsg", "sendto", "recvfrom", "getsockname", "getsockopt", "clone", "setpgid", "prctl", "seccomp", "set_tid_address",
        "set_robust_list", "rseq",
    }
)  # fmt: skip
"""A template, or a guest before Boot: also the control socket (descriptors passed),
forking guests, and what a fresh child does. No ``openat``: a guest or template opens no
file once it has read its first untrusted byte (it imports what it will need before: the
loader is hardened at Load, after those imports); ``/proc/self/status``, which the limits
read, was opened at start-up (``sandbox.enter``)."""

_libc = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def enter_namespaces() -> str:
    """New network, IPC and mount namespaces (and a user namespace where that is what makes
    them possible, or is allowed besides); what was done, or why not."""
    global _own_mount_namespace
    flags = CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWNS
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER  # the only way an unprivileged process gets the others
    before = os.readlink("/proc/self/ns/mnt")
    try:
        _call(_libc.unshare(flags), "unshare")
    except OSError as exc:
        return f"off: {exc.strerror}"
    _own_mount_namespace = os.readlink("/proc/self/ns/mnt") != before
    return "on: " + ", ".join(
        name
        for name, bit in (
            ("user", CLONE_NEWUSER),
            ("net", CLONE_NEWNET),
            ("ipc", CLONE_NEWIPC),
            ("mount", CLONE_NEWNS),
        )
        if flags & bit
    )


_own_mount_namespace = False  # enter_namespaces made one: empty_root may change its mounts

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


def empty_root() -> str:
    """In the mount namespace of our own (``enter_namespaces``): make the root an empty,
    read-only tmpfs and detach the host's filesystem, so that no path names any of its
    files (a path-based call the filters still allow, such as ``stat``, finds nothing).
    What was done, or why not. Never touches a mount namespace we share with the host."""
    if not _own_mount_namespace:
        return "off: no mount namespace of our own"
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        return f"off: no pivot_root system call number known for {os.uname().machine}"
    mount = _libc.mount
    mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    hidden = MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        # Nothing we do here may propagate to the host's mounts.
        _call(mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount")
        _call(mount(b"kindling", b"/proc", b"tmpfs", hidden, b"size=4k,mode=0555"), "mount")
        os.chdir("/proc")
        # pivot_root(".", "."): the new root, with the old one stacked on it, then detached.
        _call(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
        _call(_libc.umount2(b".", MNT_DETACH), "umount2")
        os.chdir("/")
        _call(mount(None, b"/", None, MS_REMOUNT | MS_RDONLY | hidden, None), "mount")
    except OSError as exc:
        return f"off: {exc.strerror}"
    return "on: an empty read-only tmpfs"


def guest_uid() -> int:
    """The uid a guest takes as it drops root: its subordinate one, in the user namespace
    the host mapped it into; else the one a root host named (``GUEST_UID_VARIABLE``), else
    nobody's. Never root's."""
    if sandbox.subordinate_ids:
        return SUBORDINATE_INSIDE_ID
    named = sandbox.named_uid or os.environ.get(GUEST_UID_VARIABLE, "")
    if named.isdigit() and 0 < int(named) < 0xFFFFFFFF:
        return int(named)
    return NOBODY


def drop_privileges() -> str:
    """As root (or root of the user namespace our subordinate ids are mapped into): become
    the guest uid (no groups, that uid and gid: ``guest_uid``) and, once unprivileged,
    enter a user namespace of our own too. Credentials changing clears PR_SET_PDEATHSIG,
    so it is set again."""
    if os.geteuid() != 0:
        if sandbox.subordinate_ids:
            return f"off: the host did not map the subordinate ids {sandbox.subordinate_ids}"
        return f"on: already unprivileged (uid {os.geteuid()})"
    uid = guest_uid()
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        return f"off: {exc.strerror}"
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if sandbox.subordinate_ids:
        # Changing uid made the process undumpable, and then only a process privileged in
        # the initial namespace may read its /proc files: the host, an ordinary user who
        # owns our user namespace, could not watch our memory (smaps_rollup) nor our PID
        # namespace. Dumpable, it can; what else that allows, to processes of our uid, is
        # ptrace and /proc, which the filters and the empty root deny guests anyway.
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        outside, _, gid = sandbox.subordinate_ids.partition(":")
        described = f"uid {outside} and gid {gid} (subordinate ids)"
    else:
        described = f"uid {uid}"
    if _libc.unshare(CLONE_NEWUSER) == 0:
        return f"on: {described}, in a user namespace"
    return f"on: {described}"


def no_new_privs() -> str:
    return "on" if _libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 else "off"


@functools.cache
def seccomp_filter(allowed: frozenset[str]) -> bytes:
    """The BPF program: check the architecture, then allow the listed calls (those in
    ``ARGUMENT_RULES`` only with the arguments the rule allows); EPERM else."""
    machine = os.uname().machine
    table = SYSCALLS[machine]
    calls = sorted((table[name], name) for name in allowed)
    ruled = [name for _, name in calls if name in ARGUMENT_RULES]
    ld_w_abs, jeq_k, and_k, ret_k = 0x20, 0x15, 0x54, 0x06
    allow, kill, deny = 0x7FFF0000, 0x80000000, 0x00050000 | errno.EPERM
    program = [
        (ld_w_abs, 0, 0, 4),  # seccomp_data.arch
        (jeq_k, 1, 0, AUDIT_ARCH[machine]),
        (ret_k, 0, 0, kill),  # another ABI (x32, i386): never expected
        (ld_w_abs, 0, 0, 0),  # seccomp_data.nr
    ]
    # After the allow: each ruled call's argument check, ``len(values) + 4`` instructions.
    starts, start = {}, 0
    for name in ruled:
        starts[name] = start
        start += len(ARGUMENT_RULES[name][2]) + 4
    for index, (number, name) in enumerate(calls):
        remaining = len(calls) - index - 1
        # Equal: jump over the remaining tests and the deny, to the allow -- or past it, to
        # the call's argument check.
        target = remaining + 1
        if name in ruled:
            target += 1 + starts[name]
        program.append((jeq_k, target, 0, number))
    program += [(ret_k, 0, 0, deny), (ret_k, 0, 0, allow)]
    for name in ruled:
        argument, mask, values = ARGUMENT_RULES[name]
        program += [
            (ld_w_abs, 0, 0, 16 + 8 * argument),  # seccomp_data.args[argument], low half
            (and_k, 0, 0, mask),
        ]
        for position, value in enumerate(sorted(values)):
            # Equal: jump over the remaining tests and the deny, to the allow.
            program.append((jeq_k, len(values) - position, 0, value))
        program += [(ret_k, 0, 0, deny), (ret_k, 0, 0, allow)]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_kept: list[object] = []  # the buffers behind cached program pointers stay alive


@functools.cache
def _program_pointer(allowed: frozenset[str]) -> ctypes.c_void_p:
    """A pointer to the ``sock_fprog`` for ``allowed``, built once (a template builds the
    guests' before forking, so each guest only makes the system call)."""
    program = seccomp_filter(allowed)
    buffer = ctypes.create_string_buffer(program)
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    _kept.extend((buffer, fprog))
    return ctypes.c_void_p(ctypes.addressof(fprog))


def prepare_running() -> None:
    """Build what ``harden_running`` needs, ahead of forking guests."""
    if os.uname().machine in SYSCALLS:
        _program_pointer(RUNNING)
    _libc.prctl  # noqa: B018  (looked up now: ctypes caches the function on the library)


def install_seccomp(allowed: frozenset[str]) -> str:
    """Install an allowlist filter (it stacks on any installed before)."""
    if os.uname().machine not in SYSCALLS:
        return f"off: no system call table for {os.uname().machine}"
    try:
        _call(
            _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, _program_pointer(allowed), 0, 0),
            "seccomp",
        )
    except OSError as exc:
        return f"off: {exc.strerror}"
    return f"on: {len(allowed)} system calls allowed"


children_have_own_pid_namespace = False
"""``pid_namespace_for_children`` succeeded: this process's children are in a namespace of
their own."""


def pid_namespace_for_children() -> str:
    """A template: every process it creates from now on is in a new PID namespace, whose
    first process (its init) is the template's holder (``guestproc.template``); what was
    done, or why not. Needs the privilege a user namespace of its own gives."""
    global children_have_own_pid_namespace
    try:
        _call(_libc.unshare(CLONE_NEWPID), "unshare")
    except OSError as exc:
        return f"off: {exc.strerror}"
    children_have_own_pid_namespace = True
    return "on"


def harden_loader(template: bool = False) -> dict[str, str]:
    """Namespaces, uid, (a template) a PID namespace for its children, no_new_privs and the
    LOADER filter; what each step came to."""
    steps = {"namespaces": enter_namespaces()}
    steps["root"] = empty_root()
    steps["uid"] = drop_privileges()
    if template:
        steps["pid namespace"] = pid_namespace_for_children()
    steps["no_new_privs"] = no_new_privs()
    steps["seccomp"] = install_seccomp(LOADER)
    return steps


_running_installed: str | None = None  # what ``harden_running`` came to, once it ran


def harden_running() -> str:
    """The RUNNING filter, stacked on LOADER: from now on, only what a running guest needs.
    Once: a guest that took it to load a code cache entry keeps it (filters only stack)."""
    global _running_installed
    if _running_installed is None or _running_installed.startswith("off"):
        _running_installed = install_seccomp(RUNNING)
    return _running_installed

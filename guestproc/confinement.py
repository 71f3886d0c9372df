"""Which kernel limits and hardening steps a guest process takes on, and when: one table.

::

                     guest (exec'd)             template                   guest forked from
                                                                           a template
    start-up         sandbox.enter, then        the same                   inherited
                     sandbox.restrict once the
                     engine is imported
                     (guest.run, template.run)
    Load, before     before_loading:            the same, and the holder   (no Load)
    the module is    hardening.harden_loader,   of its guests' PID
    decoded          sandbox.limit_loading      namespace (cloning)
    Load or Boot,    before_cache_entry:        (loads no entry: it
    before a code    harden_running             compiles afresh)
    cache entry is
    unmarshalled
    Load, after      --                         template_loaded: room for
                                                a snapshot in Boot
    Boot, before     before_running:            before_running:            (no Boot)
    the module's     release_freed,             the CPU limit, soft only,
    first            limit_running (for good),  for installing the start
    instruction      limit_processes,           function's snapshot and
                     harden_running (seccomp)   compiling (it runs no
                                                module code: a throwaway
                                                exec guest ran the start)
    ready to fork    --                         before_forking: CPU limit  --
                                                lifted, seccomp program
                                                built, RLIMIT_DATA for its
                                                guests (they inherit it)
    forked           --                         --                         forked: its CPU
                                                                           limit, no processes,
                                                                           harden_running

The mechanisms are ``sandbox`` (rlimits) and ``hardening`` (namespaces, uid, seccomp); this
module only decides which apply at each moment. The order relative to untrusted input is the
point: what a row names goes on before the work of that moment, decoding the module or
running its code, begins. (At Load the one look at the bytes before it is whether they are
UTF-8 text, so that the text parser is imported while imports still work: ``loading``.)
"""

from __future__ import annotations

from . import cloning, hardening, sandbox


def before_loading(module_size: int, template: bool = False) -> None:
    """At Load, once what loading imports is imported and before the module's bytes are
    decoded: the hardening (as the guest uid, the interpreter's files may be out of reach;
    a template also gets its children's PID namespace, and makes its holder: ``cloning``)
    and the loading bound."""
    hardening.harden_loader(template)  # what it could not do, kindling doctor reports
    if template:
        cloning.hold_namespace()
    sandbox.limit_loading(module_size)


def before_cache_entry() -> None:
    """A guest (never a template) about to unmarshal a code cache entry: the RUNNING filter
    first, so that what unmarshalling constructs -- ``marshal`` is not hardened against
    hostile bytes, and the entry came from another guest -- meets the filter the module's
    own code will meet. Loading goes on under it (decoding, replying, compiling what the
    entry did not bring); Boot then finds the filter installed. A template forks guests
    for its whole life, and so keeps ``clone`` in its filter: it loads no entry
    (``loading.load``)."""
    hardening.harden_running()


def template_loaded() -> None:
    """In a template, once its module is loaded: room beyond the loading bound for the
    snapshot its Boot may bring (``sandbox.allow_snapshot``). The template runs no module
    code; the host's watchdog allows for the same room while it boots."""
    sandbox.allow_snapshot()


def before_running(
    template: bool, memory_budget: int, code_size: int, cpu_seconds: int | None
) -> None:
    """At Boot, once the guest has let go of what only loading needed and before the
    module's first instruction runs: the running limits, for good. A template, which runs
    no module code, only limits the CPU its Boot may take (installing a snapshot, compiling);
    it sets its guests' limits once it is ready to fork."""
    if template:
        # No malloc_trim here: pages it gave back cost its guests pages of their own
        # (measured: 30-40 KiB more USS per idle guest).
        sandbox.limit_cpu(cpu_seconds, for_good=False)
        # Its instance's linear memory, filled from the snapshot, next to the snapshot's
        # bytes: a 60 MiB snapshot under a 64 MiB budget did not fit the loading bound
        # plus the snapshot's room once the template imported more.
        sandbox.allow_instance(memory_budget, code_size)
    else:
        sandbox.release_freed()
        sandbox.limit_running(memory_budget, code_size, cpu_seconds)
        sandbox.forget_status()  # the limits are set for good: no more reading of VmData
        sandbox.limit_processes()
        hardening.harden_running()


def before_forking(memory_budget: int, code_size: int) -> None:
    """In a template that is ready, before its first fork."""
    # Its code is compiled (at Boot) and shared by every fork; so is the seccomp program
    # each guest installs. The launch's CPU limit held for the start; forking is ours.
    sandbox.lift_cpu_limit()
    hardening.prepare_running()
    sandbox.set_parent_death_signal()  # our own, and it looks prctl up for the guests
    # From here on only forks: the memory limit its guests need, which they inherit.
    sandbox.limit_guests(memory_budget, code_size)


def forked(cpu_seconds: int | None) -> None:
    """In a guest just forked from a template, before it says Hello: what the template
    could not set for it."""
    sandbox.limit_forked(cpu_seconds)
    hardening.harden_running()


def standalone(memory_budget: int, code_size: int, cpu_seconds: int | None) -> None:
    """A process that runs module code outside the protocol -- ``kindling spec``'s script
    runner, ``kindling bench engine``'s measuring process -- once it has read its input and
    imported all it needs: what a guest started by exec gets (death with its parent,
    no_new_privs, the fixed rlimits, namespaces, uid, the loader then the running filter),
    with the running bound of ``memory_budget`` and ``code_size`` and the CPU limit."""
    sandbox.tie_to_parent()
    sandbox.restrict()
    sandbox.keep_status()
    hardening.harden_loader()
    sandbox.limit_running(memory_budget, code_size, cpu_seconds)
    sandbox.limit_processes()
    hardening.harden_running()

"""What /proc says of a process, for tests that check limits from outside."""

from __future__ import annotations

import resource


def proc_limit(pid: int, name: str) -> tuple[int, int]:
    """A limit of ``pid`` as /proc shows it, e.g. ``"Max cpu time"``: (soft, hard), with
    ``resource.RLIM_INFINITY`` for "unlimited". Not prlimit(2): the guest runs as another
    user, and reading its limits that way needs CAP_SYS_RESOURCE, which some machines (this
    one among them) withhold even from root. ``KeyError`` if there is no such limit,
    ``OSError`` if the process is gone."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith(name + "  "):
                soft, hard = line[len(name) :].split()[:2]
                return _number(soft), _number(hard)
    raise KeyError(name)


def _number(text: str) -> int:
    return resource.RLIM_INFINITY if text == "unlimited" else int(text)

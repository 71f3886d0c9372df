"""``python -m guestproc READ_FD WRITE_FD``: a guest process, started by the Kindling host
(``--template``: a template process that forks guests, see ``guestproc.template``).

Not a command for people: the host execs it with two pipes (host -> guest on ``READ_FD``,
guest -> host on ``WRITE_FD``) and speaks the frame protocol over them (see ``protocol``).
"""

from __future__ import annotations

import sys

USAGE = (
    "usage: python -m guestproc READ_FD WRITE_FD\n"
    "       python -m guestproc --template READ_FD WRITE_FD CONTROL_FD   (started by the host)\n"
)


def main(argv: list[str]) -> int:
    template = argv[:1] == ["--template"]
    fds = argv[1:] if template else argv
    if len(fds) != (3 if template else 2) or not all(arg.isdigit() for arg in fds):
        sys.stderr.write(USAGE)
        return 2
    from guestproc.guest import exit_now

    if template:
        from guestproc import template as template_process

        exit_now(template_process.run(*map(int, fds)))
    from guestproc.guest import run

    exit_now(run(int(fds[0]), int(fds[1])))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m guestproc READ_FD WRITE_FD``: a guest process, started by the Kindling host.

Not a command for people: the host execs it with two pipes (host -> guest on ``READ_FD``,
guest -> host on ``WRITE_FD``) and speaks the frame protocol over them (see ``protocol``).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not all(arg.isdigit() for arg in argv):
        sys.stderr.write("usage: python -m guestproc READ_FD WRITE_FD (started by the host)\n")
        return 2
    from guestproc.guest import exit_now, run

    exit_now(run(int(argv[0]), int(argv[1])))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Issue 14, point 2: no path leaves a preopened directory, and a read-only one changes nothing.

A guest reaches files only through the host's file broker (``host.filebroker``), which
resolves every path beneath the preopen with ``openat2(RESOLVE_BENEATH |
RESOLVE_NO_MAGICLINKS)``. The attacker here is a WASI program (``data/fileprobe.wat``) that
tries one operation and exits with the errno it got: ``..``, absolute paths, symlinks
pointing out, symlink loops, ``/proc/self`` magic links and a directory swapped for a symlink
between two calls all fail with wasmtime's errnos (``ENOTCAPABLE`` 76, ``ELOOP`` 32), and a
read-only preopen refuses every change (``ENOTCAPABLE`` from the rights the guest sees; the
host's own ``EROFS``, for a guest that lies about its rights, is in
``tests/host/test_filebroker.py``). And the guest still cannot open a file itself.

Run as root and, through ``test_unprivileged_host.py``, as an ordinary user: the host's own
uid does the I/O, so the directories are made where any uid may reach them.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.framework import GuestFactory, kindling_command
from tests.framework.guest import kindling_environment
from tests.framework.trees import tree_state

pytestmark = pytest.mark.slow  # every test here runs `kindling run`

PROBE = Path(__file__).parent / "data" / "fileprobe.wat"
SUCCESS, LOOP, NOTCAPABLE = 0, 32, 76
SECRET = b"outside the preopen\n"


@pytest.fixture
def world() -> Iterator[Path]:
    """``world/secret`` outside the preopen ``world/granted``, which holds a file, a
    directory, and symlinks out, in, absolute and in a loop. Open to every uid."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="kindling-preopen-") as name:
        world = Path(name)
        world.chmod(0o777)
        (world / "secret").write_bytes(SECRET)
        granted = world / "granted"
        (granted / "sub").mkdir(parents=True)
        (granted / "file").write_bytes(b"inside\n")
        (granted / "sub" / "note").write_bytes(b"note\n")
        (granted / "empty").mkdir()
        (granted / "out").symlink_to("../secret")
        (granted / "absolute").symlink_to(world / "secret")
        (granted / "loop1").symlink_to("loop2")
        (granted / "loop2").symlink_to("loop1")
        (granted / "in").symlink_to("sub")
        for path in [granted, *granted.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o777 if path.is_dir() else 0o666)
        yield world


def probe(
    factory: GuestFactory, world: Path, *args: str, option: str = "--dir"
) -> tuple[int | None, bytes]:
    guest = factory.run(
        PROBE, args, extra_options=[option, f"{world / 'granted'}::granted"], report=False
    )
    return guest.returncode, guest.stdout


ESCAPES = [
    ("o", "../secret"),
    ("o", "sub/../../secret"),
    ("o", str(Path("/etc/passwd"))),
    ("o", "out"),  # a symlink inside pointing out
    ("o", "absolute"),  # an absolute symlink
    ("s", "out"),
    ("s", "../"),
    ("m", "../made"),
    ("u", "../secret"),
    ("t", "out"),
    ("k", "../secret"),
    ("w", "../written"),
    ("w", "out"),
    ("r", "file", "../moved"),
    ("h", "file", "../linked"),
    ("l", "../planted", "file"),
]


@pytest.mark.parametrize("args", ESCAPES, ids=" ".join)
def test_no_path_leaves_the_preopen(
    guest_factory: GuestFactory, world: Path, args: tuple[str, ...]
) -> None:
    assert probe(guest_factory, world, *args) == (NOTCAPABLE, b"")
    assert sorted(p.name for p in world.iterdir()) == ["granted", "secret"]
    assert (world / "secret").read_bytes() == SECRET


def test_what_is_inside_is_reachable(guest_factory: GuestFactory, world: Path) -> None:
    """The same probe, the same directory: the refusals above are about the paths."""
    assert probe(guest_factory, world, "o", "file") == (SUCCESS, b"inside\n")
    assert probe(guest_factory, world, "o", "in/note") == (SUCCESS, b"note\n")
    assert probe(guest_factory, world, "k", "out") == (SUCCESS, b"../secret")
    assert probe(guest_factory, world, "w", "new") == (SUCCESS, b"")
    assert (world / "granted" / "new").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("args", "errno"),
    [(("o", "loop1"), LOOP), (("O", "out"), LOOP), (("O", "in"), LOOP)],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v),
)
def test_symlink_loops_and_nofollow_give_eloop(
    guest_factory: GuestFactory, world: Path, args: tuple[str, ...], errno: int
) -> None:
    assert probe(guest_factory, world, *args) == (errno, b"")


@pytest.mark.parametrize("path", ["self/root/etc/passwd", "self/cwd/secret", "self/fd/0"])
def test_proc_magic_links_are_not_followed(guest_factory: GuestFactory, path: str) -> None:
    """Even with /proc granted, its magic links lead nowhere (ELOOP)."""
    guest = guest_factory.run(PROBE, ["o", path], extra_options=["--ro-dir", "/proc::proc"])
    assert (guest.returncode, guest.stdout) == (LOOP, b"")


CHANGES = [
    ("w", "file"),
    ("w", "new"),
    ("m", "made"),
    ("d", "empty"),
    ("u", "file"),
    ("r", "file", "moved"),
    ("h", "file", "linked"),
    ("l", "planted", "file"),
    ("t", "file"),
    ("f", "file"),  # fd_filestat_set_size and _times on an open file
]


@pytest.mark.parametrize("args", CHANGES, ids=" ".join)
def test_a_read_only_preopen_refuses_every_change(
    guest_factory: GuestFactory, world: Path, args: tuple[str, ...]
) -> None:
    granted = world / "granted"
    before = tree_state(granted)
    assert probe(guest_factory, world, *args, option="--ro-dir") == (NOTCAPABLE, b"")
    assert tree_state(granted) == before
    assert (granted / "file").read_bytes() == b"inside\n"


def test_a_read_only_preopen_can_be_read(guest_factory: GuestFactory, world: Path) -> None:
    assert probe(guest_factory, world, "o", "file", option="--ro-dir") == (SUCCESS, b"inside\n")


def test_a_directory_swapped_for_a_symlink_between_two_calls(
    guest_factory: GuestFactory, world: Path
) -> None:
    """The guest opens ``sub/note``; the directory ``sub`` is then replaced by a symlink to
    the directory holding another ``note``, and the same path is opened again: resolved
    afresh, beneath, it fails."""
    granted = world / "granted"
    (world / "note").write_bytes(SECRET)  # what sub/note would reach through the symlink
    guest = guest_factory.build(
        PROBE, ["S", "sub/note"], extra_options=["--dir", f"{granted}::granted"], report=False
    )
    guest.spawn()
    assert guest.process is not None and guest.process.stdout is not None
    assert guest.process.stdout.read(5) == b"note\n"  # the first open, through the broker
    os.rename(granted / "sub", granted / "moved")
    (granted / "sub").symlink_to("..")
    guest.wait(b"\n")  # the guest reads a byte of stdin, then opens sub/note again
    assert (guest.returncode, guest.stdout) == (NOTCAPABLE, b""), guest.stderr


def test_the_guest_still_cannot_open_a_file_itself() -> None:
    """Preopens go through the host: ``kindling doctor``'s probe, hardened as a guest is,
    still cannot open a file."""
    doctor = subprocess.run(
        [*kindling_command(), "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        env=kindling_environment(),
    )
    found = re.search(r"^\s*open a file to read\s+(\S+)", doctor.stdout, re.MULTILINE)
    assert found is not None and found.group(1) == "blocked:", doctor.stdout

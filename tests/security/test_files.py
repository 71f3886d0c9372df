"""Issue 12, point 4: the loader opens no file once it has read the module's first byte, to
write or to read. ``RLIMIT_FSIZE`` 0 fails writes to files and the seccomp ``mmap`` rule
refuses shared mappings; the loader's filter has no ``openat`` at all, so a loader whose uid
may write a file (a host run by an ordinary user shares its uid with its guests) holds no
descriptor to write through, and reads neither other modules' cache entries nor the host's
files. What loading imports is imported before; ``/proc/self/status`` was opened at
start-up.

The attacker is Python running at Load, where a decoder bug would put it
(``tests/guests/subverted.py``: a module whose bytes start with ``python:``). Before the
first rule the open succeeded and the write failed (``File too large``); before the second,
the loader could read any file its uid could."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.errors import GuestEnded
from host.supervisor import Host
from tests.guests import subverted

pytestmark = pytest.mark.slow  # every test here starts guests

ORIGINAL = b"print('the host's own code')\n"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every uid may enter (pytest's own are private to the test's user)."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="kindling-files-") as name:
        Path(name).chmod(0o755)
        yield Path(name)


async def load_payload(source: str) -> str:
    """What the payload, run at Load, left in ``result`` (or the exception it raised)."""
    async with Host(cache=False, launcher=subverted()) as host:
        with pytest.raises(GuestEnded) as ended:
            await host.launch(("python:" + source).encode())
    message = str(ended.value)
    assert "payload: " in message, message
    return message.split("payload: ", 1)[1]


async def test_the_payload_runs_at_load() -> None:
    """The harness: the payload runs, and says so."""
    assert await load_payload("result = 6 * 7") == "42"


async def test_the_loader_cannot_read_a_file_it_could_otherwise(open_dir: Path) -> None:
    target = open_dir / "readable.py"
    target.write_bytes(ORIGINAL)
    target.chmod(0o644)  # readable by any uid: only the filter can refuse
    outcome = await load_payload(f"result = open({str(target)!r}, 'rb').read()[:5]")
    assert outcome.startswith("PermissionError: [Errno 1] Operation not permitted"), outcome


async def test_the_loader_cannot_overwrite_a_file_it_could_otherwise(open_dir: Path) -> None:
    target = open_dir / "hosts_own_source.py"
    target.write_bytes(ORIGINAL)
    target.chmod(0o666)  # writable by any uid: only the filter can refuse
    outcome = await load_payload(
        f"import os; fd = os.open({str(target)!r}, os.O_WRONLY); os.write(fd, b'#')"
    )
    assert outcome.startswith("PermissionError: [Errno 1] Operation not permitted"), outcome
    assert target.read_bytes() == ORIGINAL


async def test_the_loader_sees_none_of_the_hosts_files() -> None:
    """Its root is an empty read-only tmpfs (its own mount namespace): a path-based call
    the filter still allows, ``stat``, finds nothing of the host's."""
    outcome = await load_payload(
        "import os\nresult = [os.path.exists(p) for p in ('/etc/hostname', '/proc/1', '/usr')]"
    )
    assert outcome == "[False, False, False]"

"""Issue 12, point 1: a code cache entry is unmarshalled under the running filter, or not
at all. ``marshal`` is not hardened against hostile bytes, and an entry is another guest's
output: whatever unmarshalling it could be made to do must meet the filter the module's own
code meets.

The hole (``tests/guests/subverted.py``): an entry whose payload is ``python:SRC`` runs SRC
where the guest unmarshals it, which is what a bug in ``marshal`` would give an attacker who
planted the entry. The entry is then rejected with what SRC found, and the report's
``code_cache`` says so. SRC tries three calls the loader's filter allows and the running
filter does not: ``uname``, ``dup2`` and a fork (whose child, if there is one, exits at once).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from host import codecache
from host.api import run_guest
from host.config import GuestConfig
from host.guest import Guest
from host.supervisor import Host
from protocol.codeentry import module_digest, seal
from tests.framework.paths import fixture
from tests.guests import subverted

pytestmark = pytest.mark.slow  # every test here starts guests

PROBE = """
import os
found = []
for name, call in (("uname", os.uname), ("dup2", lambda: os.close(os.dup2(0, 100)))):
    try:
        call()
        found.append(name + " allowed")
    except PermissionError:
        found.append(name + " blocked")
    except OSError:  # the kernel ran the call (EBADF, say): the filter let it through
        found.append(name + " allowed")
try:
    child = os.fork()
    if child == 0:
        os._exit(0)
    found.append("fork allowed")
except PermissionError:
    found.append("fork blocked")
result = ", ".join(found)
"""
BLOCKED = "uname blocked, dup2 blocked, fork blocked"


def plant(directory: Path, module: bytes, metered: bool) -> None:
    """An entry for ``module`` in ``directory`` whose payload is the probe."""
    entry = seal(b"python:" + PROBE.encode(), metered)
    assert codecache.write(str(directory), module_digest(module), metered, entry) == "stored"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return Path(codecache.prepare(tmp_path / "cache"))


async def run_subverted(module: bytes, cache_dir: Path, config: GuestConfig) -> str | None:
    guest = Guest(config, launcher=subverted())
    report = await run_guest(guest, module, invoke="add", args=(2, 3), cache_dir=str(cache_dir))
    assert report.ending.succeeded, report.ending
    assert report.results is not None and report.results[0].signed() == 5
    return report.code_cache


async def test_a_guest_unmarshals_an_entry_under_the_running_filter(cache_dir: Path) -> None:
    """Before: the probe ran under the loader's filter and found all three allowed."""
    module = fixture("exports").read_bytes()
    plant(cache_dir, module, metered=False)
    code_cache = await run_subverted(module, cache_dir, GuestConfig())
    assert code_cache is not None and code_cache.startswith(f"rejected: payload: {BLOCKED}")


async def test_a_metered_entry_is_unmarshalled_under_the_running_filter_too(
    cache_dir: Path,
) -> None:
    """A Boot with fuel brings the metered entry: the same rule at Boot."""
    module = fixture("exports").read_bytes()
    plant(cache_dir, module, metered=True)
    code_cache = await run_subverted(module, cache_dir, GuestConfig(fuel=10**9))
    assert code_cache is not None
    assert f"metered: rejected: payload: {BLOCKED}" in code_cache


async def test_a_template_unmarshals_no_entry(cache_dir: Path) -> None:
    """A template keeps ``clone`` for life: it is given no entry, and compiles afresh.
    Before: it unmarshalled the planted one under the loader's filter."""
    module = fixture("exports").read_bytes()
    plant(cache_dir, module, metered=False)
    async with Host(cache_dir=cache_dir, launcher=subverted()) as host:
        sandbox = await host.launch(module)
        try:
            assert await sandbox.invoke("add", 2, 3) == [5]
            (template,) = host.templates()
            assert template.guest.code_cache is not None
            assert template.guest.code_cache.startswith("miss"), template.guest.code_cache
        finally:
            await sandbox.stop()
    # What the template compiled replaced the planted entry: the next guest that loads
    # the module from the cache gets good code.
    report = await run_guest(Guest(), module, invoke="add", args=(2, 3), cache_dir=str(cache_dir))
    assert report.code_cache == "hit"
    assert report.results is not None and report.results[0].signed() == 5

"""The code cache: compiled modules kept on disk between guest processes.

Through the real ``kindling run`` where the user would see it (hits, misses, damaged and
raced entries, ``--no-cache``, an unsafe directory), and through the host's own pieces for
what the CLI cannot reach (a guest that floods ``Code`` frames, pruning).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from host import codecache
from protocol import codeentry
from protocol.messages import MAX_ENTRY_BYTES
from tests.framework.guest import kindling_command, kindling_environment
from tests.framework.paths import REPO_ROOT, fixture

from .conftest import Run, misbehaving
from .test_cli import report_of

pytestmark = pytest.mark.slow  # nearly every test here runs `kindling` or a guest

MODULE = fixture("qsort_fnptr")


def kindling_run(cache: Path, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*kindling_command(), "run", "--report", *map(str, args)],
        capture_output=True,
        env=kindling_environment({"KINDLING_CACHE_DIR": str(cache)}),
        cwd=REPO_ROOT,
        timeout=60,
    )


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/*.kcode"))


def the_entry(cache: Path) -> Path:
    found = entries(cache)
    assert len(found) == 1, found
    return found[0]


def run_ok(cache: Path, *args: str | Path) -> tuple[bytes, dict[str, Any]]:
    done = kindling_run(cache, *args, MODULE)
    assert done.returncode == 0, done.stderr
    return done.stdout, report_of(done)


def test_a_miss_stores_the_entry_and_the_next_run_hits(tmp_path: Path) -> None:
    first_output, first = run_ok(tmp_path)
    assert first["code_cache"] == "miss; stored"
    assert first["decode_ms"] > 0
    entry = the_entry(tmp_path)
    assert entry.name == codeentry.module_digest(MODULE.read_bytes()).hex() + ".kcode"
    assert entry.parent.name == codeentry.engine_key().hex()[:16]
    assert entry.stat().st_mode & 0o777 == 0o600

    second_output, second = run_ok(tmp_path)
    assert second["code_cache"] == "hit"
    assert second["decode_ms"] == second["validate_ms"] == 0.0
    assert second_output == first_output
    assert b"ascending: -997 -973" in second_output


def test_the_directory_is_created_private(tmp_path: Path) -> None:
    cache = tmp_path / "new" / "cache"
    run_ok(cache)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert the_entry(cache).parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:-200] + bytes([data[-200] ^ 0x40]) + data[-199:], "damaged"),
        (lambda data: b"", "miss"),
        (lambda data: b"#!/bin/sh\nrm -rf /\n" * 10, "bad magic"),
        (lambda data: data[:8] + b"\x09\x00" + data[10:], "entry format 9"),
    ],
    ids=["truncated", "bit-flip", "empty", "foreign", "future-format"],
)
def test_a_damaged_entry_is_rejected_then_replaced(
    tmp_path: Path, damage: Any, reason: str
) -> None:
    expected_output, _ = run_ok(tmp_path)
    entry = the_entry(tmp_path)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))

    output, report = run_ok(tmp_path)
    assert output == expected_output
    assert reason in report["code_cache"], report["code_cache"]
    assert report["code_cache"].endswith("; stored")
    assert entry.read_bytes() == good  # the same code again: compiling is deterministic
    assert run_ok(tmp_path)[1]["code_cache"] == "hit"


def test_a_metered_run_keeps_its_own_entry(tmp_path: Path) -> None:
    run_ok(tmp_path)
    _, first = run_ok(tmp_path, "--fuel", "10000000")
    assert first["code_cache"] == "hit; metered: miss; stored"
    assert len(entries(tmp_path)) == 2
    _, second = run_ok(tmp_path, "--fuel", "10000000")
    assert second["code_cache"] == "hit; metered: hit"
    # Metered code from the cache counts the same fuel: the same budget runs out the same way.
    starved = [kindling_run(tmp_path, "--fuel", "20000", MODULE) for _ in range(2)]
    assert [done.returncode for done in starved] == [125, 125]
    assert starved[0].stdout == starved[1].stdout


def test_entries_of_another_engine_are_not_used(tmp_path: Path) -> None:
    run_ok(tmp_path)
    entry = the_entry(tmp_path)
    other = tmp_path / "0123456789abcdef"
    other.mkdir(mode=0o700)
    entry.rename(other / entry.name)
    _, report = run_ok(tmp_path)
    assert report["code_cache"] == "miss; stored"


def test_no_cache_neither_reads_nor_writes(tmp_path: Path) -> None:
    _, report = run_ok(tmp_path, "--no-cache")
    assert report["code_cache"] == "off"
    assert report["precompiled"] >= 0
    assert entries(tmp_path) == []


def test_a_directory_others_can_write_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(0o777)
    done = kindling_run(cache, MODULE)
    assert done.returncode == 0
    assert b"not using the code cache" in done.stderr
    assert b"can be written by other users" in done.stderr
    assert report_of(done)["code_cache"] == "off"
    assert entries(cache) == []


def test_cache_dir_keeps_a_trust_domain_apart(tmp_path: Path) -> None:
    """``--cache-dir`` names the directory for one run: it stores and hits there, and the
    default directory ($KINDLING_CACHE_DIR here) is neither read nor written."""
    default, own = tmp_path / "default", tmp_path / "own"
    assert run_ok(default)[1]["code_cache"] == "miss; stored"  # the default has the entry
    first = kindling_run(default, "--cache-dir", own, MODULE)
    assert first.returncode == 0, first.stderr
    assert report_of(first)["code_cache"] == "miss; stored"  # not the default's entry
    assert len(entries(own)) == 1 and len(entries(default)) == 1
    assert report_of(kindling_run(default, "--cache-dir", own, MODULE))["code_cache"] == "hit"


def test_an_unusable_cache_dir_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    done = kindling_run(tmp_path / "default", "--cache-dir", shared, MODULE)
    assert done.returncode == 2
    assert b"cannot use --cache-dir" in done.stderr
    assert b"can be written by other users" in done.stderr
    contradiction = kindling_run(tmp_path, "--no-cache", "--cache-dir", shared, MODULE)
    assert contradiction.returncode == 2
    assert b"--no-cache and --cache-dir contradict each other" in contradiction.stderr


async def test_a_host_keeps_its_entries_in_its_cache_dir(tmp_path: Path) -> None:
    from host.supervisor import Host

    async with Host(cache_dir=tmp_path / "mine") as host:
        sandbox = await host.launch(MODULE)
        await sandbox.stop()
    assert len(entries(tmp_path / "mine")) == 1
    with pytest.raises(ValueError, match="takes no cache_dir"):
        Host(cache=False, cache_dir=tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(codecache.CacheDirectoryError, match="can be written by other users"):
        async with Host(cache_dir=shared):
            pass


def test_racing_writers_leave_one_sound_entry(tmp_path: Path) -> None:
    command = [*kindling_command(), "run", "--report", str(MODULE)]
    env = kindling_environment({"KINDLING_CACHE_DIR": str(tmp_path)})
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4
    assert len({stdout for stdout, _ in outputs}) == 1
    entry = the_entry(tmp_path)
    codeentry.open_entry(entry.read_bytes(), metered=False)  # whole and sound
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".tmp-")]
    assert run_ok(tmp_path)[1]["code_cache"] == "hit"


# -- the host's side ---------------------------------------------------------------------------


async def test_a_guest_flooding_code_frames_is_cut_off(run: Run, tmp_path: Path) -> None:
    report = await run(
        b"\0asm\1\0\0\0", launcher=misbehaving("code_flood"), cache_dir=str(tmp_path)
    )
    assert report.ending.text == "protocol_error"
    assert f"over {MAX_ENTRY_BYTES} bytes" in report.ending.message
    assert entries(tmp_path) == []


async def test_a_guest_dribbling_tiny_code_frames_is_cut_off_at_the_second(
    run: Run, tmp_path: Path
) -> None:
    """Issue 12, point 5: every piece of an entry but the last is a full chunk, so a stream
    of 2-byte Code frames ends at its second frame, not after millions."""
    report = await run(
        b"\0asm\1\0\0\0", launcher=misbehaving("code_dribble"), cache_dir=str(tmp_path)
    )
    assert report.ending.text == "protocol_error"
    assert "a Code frame after a short one (2 bytes)" in report.ending.message
    assert run.guest.frames_received <= 1000 + 2  # the host stopped within the first batch
    assert entries(tmp_path) == []


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("code_after_starting", "a Code frame after the module's code started running"),
        ("code_after_a_hit", "a code cache entry with a reply that says 'hit'"),
    ],
)
async def test_an_entry_comes_only_from_a_guest_that_ran_no_module_code(
    run: Run, tmp_path: Path, mode: str, problem: str
) -> None:
    """Issue 12, point 1: once the module's code may have run (``Starting``), or when the
    guest did not compile afresh, a Code frame is a protocol error and nothing is kept."""
    report = await run(b"\0asm\1\0\0\0", launcher=misbehaving(mode), cache_dir=str(tmp_path))
    assert report.ending.text == "protocol_error"
    assert problem in report.ending.message
    assert entries(tmp_path) == []


def test_the_host_writes_only_sound_entries(tmp_path: Path) -> None:
    digest = codeentry.module_digest(b"module")
    sound = codeentry.seal(b"payload", metered=False)
    assert codecache.write(str(tmp_path), digest, False, sound[:-1]).startswith(
        "not stored: truncated"
    )
    assert codecache.write(str(tmp_path), digest, True, sound) == (
        "not stored: metered differently"
    )
    assert entries(tmp_path) == []
    assert codecache.write(str(tmp_path), digest, False, sound) == "stored"
    assert codecache.read(str(tmp_path), digest, False) == sound
    assert codecache.read(str(tmp_path), digest, True) == b""


def test_pruning_removes_the_least_recently_used(tmp_path: Path) -> None:
    directory = str(tmp_path)
    digests = [codeentry.module_digest(bytes([n])) for n in range(4)]
    for age, digest in enumerate(digests):
        codecache.write(directory, digest, False, codeentry.seal(b"x" * 1000, metered=False))
        path = codecache.entry_path(directory, digest, False)
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    codecache.read(directory, digests[0], False)  # used now: the most recent
    leftover = codecache.entry_path(directory, digests[0], False).parent / ".tmp-dead.kcode"
    leftover.write_bytes(b"half")
    os.utime(leftover, (1_000_000, 1_000_000))

    removed = codecache.prune(directory, budget=2 * 1050)
    assert removed == 3  # the leftover and the two oldest entries
    kept = {path.name.split(".")[0] for path in entries(tmp_path)}
    assert kept == {digests[0].hex(), digests[3].hex()}

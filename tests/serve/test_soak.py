"""The soak: a gateway under 16 concurrent clients for 10 minutes, out of the default run
(``pytest -m soak tests/serve/test_soak.py``; ``KINDLING_SOAK_SECONDS`` shortens it).

No request may fail, the gateway's memory must stay flat (RSS at the end within 10% of
RSS after the first minute, once templates, pools and caches are built), and after SIGTERM
no process is left (``no_leaks``)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.framework.paths import EXAMPLES_DIR

from .server import Server

pytestmark = [pytest.mark.slow, pytest.mark.soak]

CONFIG = f"""
[[function]]
name = "shout"
module = "{EXAMPLES_DIR / "shout.wasm"}"
queue = 1024

[[function]]
name = "add"
module = "{EXAMPLES_DIR / "add.wasm"}"
mode = "export"
export = "add"
pool = {{ min = 2, max = 16 }}
queue = 1024
"""
CLIENTS = 16


@pytest.mark.timeout(0)
async def test_sixteen_clients_for_ten_minutes(tmp_path: Path) -> None:
    seconds = float(os.environ.get("KINDLING_SOAK_SECONDS", "600"))
    warm_up = min(60.0, seconds / 5)
    server = Server(CONFIG, tmp_path).start()
    gateway = psutil.Process(server.process.pid if server.process else 0)
    counts = {"ok": 0, "failed": 0}
    failures: list[str] = []
    baseline: list[int] = []
    try:
        stop = time.monotonic() + seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:

            async def client(number: int) -> None:
                path, body, expected = (
                    ("/shout", b"soak", b"POST /shout: SOAK\n")
                    if number % 2
                    else ("/add", b"[2, 3]", b"[5]")
                )
                while time.monotonic() < stop:
                    try:
                        async with session.post(server.url(path), data=body) as response:
                            answer = await response.read()
                            good = response.status == 200 and answer == expected
                    except aiohttp.ClientError as exc:
                        good, answer = False, str(exc).encode()
                    counts["ok" if good else "failed"] += 1
                    if not good and len(failures) < 10:
                        failures.append(f"{path}: {answer[:200]!r}")

            async def sample() -> None:
                await asyncio.sleep(warm_up)
                baseline.append(gateway.memory_info().rss)

            await asyncio.gather(sample(), *(client(n) for n in range(CLIENTS)))
        final = gateway.memory_info().rss
    finally:
        status = server.stop()
    assert failures == [] and counts["failed"] == 0, failures
    assert counts["ok"] > seconds * 10
    assert status == 0
    growth = final / baseline[0] - 1
    print(f"soak: {counts['ok']} requests in {seconds:g} s, RSS {baseline[0]} -> {final}")
    assert abs(growth) <= 0.10, f"the gateway's RSS went from {baseline[0]} to {final}"

"""``Server``: a real ``kindling serve`` process for a test, and an HTTP client for it.

::

    Server(config_text, tmp_path).start()  ──▶ kindling serve CONFIG --listen 127.0.0.1:0
        reads the "listening" line from its log for the port; get/post over aiohttp
    stop(signal) ──▶ waits for its exit status; the log lines (invocations, events)
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.framework.guest import kindling_command, kindling_environment


class Server:
    def __init__(self, config: str, directory: Path, *options: str) -> None:
        self.config = directory / "serve.toml"
        self.config.write_text(config)
        self.log_path = directory / "serve.log"
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 60.0) -> Server:
        command = [
            *kindling_command(),
            "serve",
            str(self.config),
            "--listen",
            "127.0.0.1:0",
            "--log",
            str(self.log_path),
            *self.options,
        ]
        self.stderr_path = self.log_path.with_suffix(".stderr")
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(command, env=kindling_environment(), stderr=stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.get("event") == "listening":
                    self.port = int(line["address"].rsplit(":", 1)[1])
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"kindling serve exited: {self.stderr_path.read_text()}")
            time.sleep(0.05)
        raise TimeoutError("kindling serve did not listen")

    def lines(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def events(self) -> list[str]:
        return [line["event"] for line in self.lines() if "event" in line]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def request(
        self, method: str, path: str, body: bytes = b"", **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url(path), data=body, headers=headers) as response,
        ):
            return response.status, dict(response.headers), await response.read()

    def send(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self, number: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(number)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        return status

"""schemathesis against the control API: every operation of the OpenAPI document, with
bodies and parameters it generates, answers without a server error and as documented.

schemathesis speaks HTTP over TCP, so a small forwarder (a thread of this test) carries
its connections to the gateway's Unix socket; the gateway is a real ``kindling serve``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from host.serve.control import openapi_document
from tests.framework.paths import EXAMPLES_DIR

from .server import Server

pytestmark = pytest.mark.slow

# A body can fit the schema and still be refused: its module must exist and be WebAssembly,
# its route must be free, exactly one of module and module_base64 given. Those 400s are
# right; every other check (no 5xx, documented statuses, content types, response bodies
# that fit their schemas, malformed bodies refused) stays on.
SEMANTIC = [schemathesis.checks.positive_data_acceptance]

CONFIG = f"""
[[function]]
name = "add"
module = "{EXAMPLES_DIR / "add.wasm"}"
mode = "export"
export = "add"
"""


class Forwarder:
    """TCP on 127.0.0.1 to a Unix socket, in a thread with its own event loop."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> Forwarder:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connect, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(self.socket))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))


@pytest.fixture
def control_url(tmp_path: Path) -> Iterator[str]:
    socket = tmp_path / "api.sock"
    server = Server(CONFIG, tmp_path, "--api-socket", str(socket)).start()
    try:
        with Forwarder(socket) as forwarder:
            yield f"http://127.0.0.1:{forwarder.port}"
    finally:
        server.stop()


def test_every_operation_answers_as_documented(control_url: str) -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 9
    for operation in operations:

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate(base_url=control_url, timeout=30, excluded_checks=SEMANTIC)

        run()

"""The control API of ``kindling serve``: REST on a Unix socket, in Firecracker's manner.

::

    GET    /functions                 every function: name, route, mode, limits, counters
    PUT    /functions/{name}          deploy or replace (body: the [[function]] keys as JSON;
                                      module an absolute path, or module_base64)
    DELETE /functions/{name}          retire it (requests in flight finish)
    POST   /functions/{name}/invoke   one invocation: status, headers, body (base64), report
    GET    /guests                    every live guest: id (its pid), function, state
    GET    /guests/{id}
    PATCH  /guests/{id}               {"state": "paused" | "running"}: SIGSTOP / SIGCONT
                                      (wall-clock limits keep running while paused)
    DELETE /guests/{id}               kill it: its request, if any, ends ``stopped``
    GET    /openapi.json              this API as OpenAPI 3 (committed: docs/openapi.json)

The socket is created ``0600``: filesystem permissions are the access control, as with
Firecracker's and Docker's sockets. Bodies are validated by the same pydantic models as the
TOML (``FunctionSpec``); every error is ``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import ConfigError
from ..endings import Ending
from ..guest import Guest
from ..supervisor import proc_state
from .function import Function
from .gateway import Gateway
from .spec import FunctionSpec, check_unique, validate_function

JSON = "application/json"
SETTLE_SECONDS = 1.0


class GuestPatch(BaseModel):
    """The body of ``PATCH /guests/{id}``."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["paused", "running"]


class GuestInfo(BaseModel):
    id: int
    function: str
    state: str
    paused: bool


class FunctionInfo(BaseModel):
    name: str
    route: str
    mode: str
    limits: dict[str, Any]
    invocations: int
    endings: dict[str, int]
    in_flight: int
    queued: int
    throttled: int
    guests: int
    warm: bool
    p50_ms: float | None
    p99_ms: float | None
    memory: int | None


class InvokeResult(BaseModel):
    status: int
    headers: list[tuple[str, str]]
    body_base64: str
    report: dict[str, Any]


class Control:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.paused: set[int] = set()
        app = self.app = web.Application(client_max_size=96 * 1024 * 1024)
        app.router.add_get("/functions", self.list_functions)
        app.router.add_put("/functions/{name}", self.put_function)
        app.router.add_delete("/functions/{name}", self.delete_function)
        app.router.add_post("/functions/{name}/invoke", self.invoke)
        app.router.add_get("/guests", self.list_guests)
        app.router.add_get("/guests/{id}", self.get_guest)
        app.router.add_patch("/guests/{id}", self.patch_guest)
        app.router.add_delete("/guests/{id}", self.delete_guest)
        app.router.add_get("/openapi.json", self.openapi)

    # -- functions --------------------------------------------------------------------------

    async def list_functions(self, request: web.Request) -> web.Response:
        return _json([function_info(f).model_dump() for f in self.gateway.all_functions()])

    async def put_function(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            values = json.loads(await request.read())
        except ValueError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        if not isinstance(values, dict):
            return _error(400, "the body must be a JSON object of [[function]] keys")
        if values.setdefault("name", name) != name:
            return _error(400, f"name: {values['name']!r} differs from the path's {name!r}")
        try:
            spec = validate_function(values, f"PUT /functions/{name}")
            if spec.module is not None and not Path(spec.module).is_absolute():
                raise ConfigError(f"function {name}", "module: must be an absolute path", "module")
            module = spec.module_bytes()
            others = [f.spec for f in self.gateway.all_functions() if f.name != name]
            check_unique([*others, spec], f"PUT /functions/{name}")
        except ConfigError as exc:
            return _error(400, str(exc))
        existed = name in self.gateway.functions
        current = [(f.spec, f.module) for f in self.gateway.all_functions() if f.name != name]
        self.gateway.deploy([*current, (spec, module)])
        return _json(
            function_info(self.gateway.functions[name]).model_dump(), 200 if existed else 201
        )

    async def delete_function(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.gateway.functions:
            return _error(404, f"no function named {name!r}")
        self.gateway.deploy(
            [(f.spec, f.module) for f in self.gateway.all_functions() if f.name != name]
        )
        return web.Response(status=204)

    async def invoke(self, request: web.Request) -> web.Response:
        function = self.gateway.functions.get(request.match_info["name"])
        if function is None:
            return _error(404, f"no function named {request.match_info['name']!r}")
        response = await function.invoke(
            await request.read(),
            [(k, v) for k, v in request.headers.items() if k.lower() not in _TRANSPORT],
            request.query_string,
            "POST",
        )
        report = response.report
        if report is not None:
            self.gateway.record(report)
        result = InvokeResult(
            status=response.status,
            headers=response.headers,
            body_base64=base64.b64encode(response.body).decode(),
            report=report.__dict__ if report is not None else {},
        )
        return _json(result.model_dump())

    # -- guests -----------------------------------------------------------------------------

    def _guests(self) -> dict[int, tuple[Function, Guest]]:
        found = {}
        for function in self.gateway.host.functions():
            for guest in function.guests():
                if guest.pid is not None and guest.ending is None:
                    found[guest.pid] = (function, guest)
        self.paused &= set(found)
        return found

    def _info(self, pid: int, function: Function, guest: Guest) -> dict[str, Any]:
        paused = pid in self.paused
        state = "paused" if paused else guest.state.value
        return GuestInfo(id=pid, function=function.name, state=state, paused=paused).model_dump()

    async def list_guests(self, request: web.Request) -> web.Response:
        return _json([self._info(pid, *pair) for pid, pair in sorted(self._guests().items())])

    def _find(self, request: web.Request) -> tuple[int, Function, Guest] | web.Response:
        text = request.match_info["id"]
        pid = int(text) if text.isdigit() else -1
        pair = self._guests().get(pid)
        if pair is None:
            return _error(404, f"no live guest with id {text!r}")
        return pid, *pair

    async def get_guest(self, request: web.Request) -> web.Response:
        found = self._find(request)
        return found if isinstance(found, web.Response) else _json(self._info(*found))

    async def patch_guest(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        pid, function, guest = found
        try:
            patch = GuestPatch.model_validate_json(await request.read())
        except ValidationError as exc:
            return _error(400, _first(exc))
        stopping = patch.state == "paused"
        if stopping:
            guest.send_signal(signal.SIGSTOP)
            self.paused.add(pid)
            function.paused.add(pid)
        else:
            guest.send_signal(signal.SIGCONT)
            self.paused.discard(pid)
            function.paused.discard(pid)
        # Signals arrive asynchronously: answer once the kernel shows the new state.
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline and (proc_state(pid) in ("T", "t")) != stopping:
            await asyncio.sleep(0.001)
        return _json(self._info(pid, function, guest))

    async def delete_guest(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        pid, function, guest = found
        guest.end(Ending.stopped("stopped through the control API"))
        if pid in self.paused:
            guest.send_signal(signal.SIGCONT)  # a stopped process takes SIGKILL all the same
        self.paused.discard(pid)
        function.paused.discard(pid)
        # Answer once it is gone, so that what the client asks next no longer finds it
        # (killed is not yet reaped: the listing shows a guest until it has ended).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(guest.wait(), SETTLE_SECONDS)
        return web.Response(status=204)

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(openapi_document())


_TRANSPORT = {"host", "content-length", "transfer-encoding", "connection"}


def function_info(function: Function) -> FunctionInfo:
    spec = function.spec
    limits = spec.guest_config().model_dump(mode="json")
    return FunctionInfo(
        name=function.name,
        route=function.route,
        mode=function.mode.value,
        limits=limits,
        invocations=function.invocations,
        endings=dict(function.endings),
        in_flight=function.gate.in_flight,
        queued=function.gate.waiting,
        throttled=function.gate.throttled,
        guests=len(function.guests()),
        warm=function.warm,
        p50_ms=function.percentile(0.5),
        p99_ms=function.percentile(0.99),
        memory=function.memory,
    )


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(value).encode(), content_type=JSON)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _first(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


async def start_control(gateway: Gateway, path: Path) -> tuple[Control, web.AppRunner]:
    """Serve the control API on a Unix socket at ``path``, created ``0600``."""
    control = Control(gateway)
    runner = web.AppRunner(control.app, access_log=None, handle_signals=False)
    await runner.setup()
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()  # a socket left by a server that died
    old = os.umask(0o177)
    try:
        await web.UnixSite(runner, str(path)).start()
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return control, runner


def openapi_document() -> dict[str, Any]:
    """The control API as OpenAPI 3.1, its schemas from the pydantic models."""
    from pydantic.json_schema import models_json_schema

    models: list[type[BaseModel]] = [
        FunctionSpec,
        FunctionInfo,
        GuestInfo,
        GuestPatch,
        InvokeResult,
    ]
    _, schemas = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    components = schemas.get("$defs", {})
    components["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {JSON: {"schema": schema}}}

    error = body(ref("Error"), "An error, named")
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ident = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    paths = {
        "/functions": {
            "get": {
                "operationId": "listFunctions",
                "responses": {
                    "200": body({"type": "array", "items": ref("FunctionInfo")}, "Every function")
                },
            }
        },
        "/functions/{name}": {
            "put": {
                "operationId": "putFunction",
                "parameters": [name],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("FunctionSpec")}},
                },
                "responses": {
                    "200": body(ref("FunctionInfo"), "Replaced"),
                    "201": body(ref("FunctionInfo"), "Deployed"),
                    "400": error,
                },
            },
            "delete": {
                "operationId": "deleteFunction",
                "parameters": [name],
                "responses": {"204": {"description": "Retired"}, "404": error},
            },
        },
        "/functions/{name}/invoke": {
            "post": {
                "operationId": "invokeFunction",
                "parameters": [name],
                "requestBody": {
                    "content": {"application/octet-stream": {"schema": {"type": "string"}}}
                },
                "responses": {"200": body(ref("InvokeResult"), "The invocation"), "404": error},
            }
        },
        "/guests": {
            "get": {
                "operationId": "listGuests",
                "responses": {
                    "200": body({"type": "array", "items": ref("GuestInfo")}, "Live guests")
                },
            }
        },
        "/guests/{id}": {
            "get": {
                "operationId": "getGuest",
                "parameters": [ident],
                "responses": {"200": body(ref("GuestInfo"), "The guest"), "404": error},
            },
            "patch": {
                "operationId": "patchGuest",
                "parameters": [ident],
                "requestBody": {"required": True, "content": {JSON: {"schema": ref("GuestPatch")}}},
                "responses": {
                    "200": body(ref("GuestInfo"), "The guest"),
                    "400": error,
                    "404": error,
                },
            },
            "delete": {
                "operationId": "deleteGuest",
                "parameters": [ident],
                "responses": {"204": {"description": "Killed"}, "404": error},
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "responses": {"200": body({"type": "object"}, "This document")},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "kindling serve control API", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }

"""WAGI/CGI 1.1 for command mode: a request as a program's environment and arguments, and the
program's output as a response.

::

    request ──▶ environ: the function's env, then REQUEST_METHOD, PATH_INFO, QUERY_STRING,
                 CONTENT_TYPE, CONTENT_LENGTH, SERVER_NAME, SERVER_PORT, REMOTE_ADDR,
                 X_MATCHED_ROUTE, HTTP_* (the CGI variables win a clash)
            ──▶ argv: the route, the function's args, the query's '&'-separated parts
    stdout  ──▶ headers (Content-Type or Location required, Status: NNN optional),
                a blank line (LF or CRLF), the body  ──▶ status, headers, body
                anything else: MalformedOutput (the gateway answers 502)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

MAX_HEADER_BYTES = 64 * 1024
"""The most bytes of headers a program may write before its blank line."""

# A header name as RFC 9110 spells a token; values are visible ASCII, space and tab.
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE = re.compile(rb"^[\t\x20-\x7e]*$")
_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "upgrade", "content-length"}


class MalformedOutput(Exception):
    """The program's output is not a CGI response (the gateway answers 502)."""


@dataclass(frozen=True)
class Request:
    """What a command sees of an HTTP request."""

    method: str = "GET"
    path: str = "/"
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    route: str = "/"
    server_name: str = "localhost"
    server_port: int = 80
    remote_addr: str = "127.0.0.1"


def request_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(k), str(v)) for k, v in items)


def environment(request: Request, own: Mapping[str, str]) -> list[bytes]:
    """The program's environment, ``KEY=VALUE`` each: the function's own, then the CGI
    variables (which win a clash). Nothing from the host's environment."""
    cgi: dict[str, str] = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "kindling",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": request.path,
        "SCRIPT_NAME": request.route,
        "QUERY_STRING": request.query,
        "SERVER_NAME": request.server_name,
        "SERVER_PORT": str(request.server_port),
        "REMOTE_ADDR": request.remote_addr,
        "X_MATCHED_ROUTE": request.route,
        "CONTENT_LENGTH": str(len(request.body)),
        "CONTENT_TYPE": "",
    }
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "content-type":
            cgi["CONTENT_TYPE"] = value
            continue
        if lowered == "content-length":
            continue  # the body's own length is what the program reads
        key = "HTTP_" + name.upper().replace("-", "_")
        if "=" in key or "\0" in key or "\0" in value:
            continue
        cgi[key] = f"{cgi[key]}, {value}" if key in cgi else value
    merged = {k: v for k, v in own.items() if k not in cgi}
    merged.update(cgi)
    return [f"{k}={v}".encode("utf-8", "surrogateescape") for k, v in merged.items()]


def arguments(request: Request, own: Iterable[str]) -> list[bytes]:
    """argv: the route, the function's arguments, then the query's ``&``-separated parts
    (percent-decoded; ``+`` is a space, as forms send it)."""
    parts = [unquote_to_bytes(part.replace("+", " ")) for part in request.query.split("&") if part]
    return [
        request.route.encode(),
        *(arg.encode() for arg in own),
        *(part for part in parts if b"\0" not in part),
    ]


@dataclass(frozen=True)
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_output(output: bytes) -> CgiResponse:
    """The response a program wrote; ``MalformedOutput`` if it is none."""
    end, gap = _header_end(output)
    if end < 0:
        raise MalformedOutput("no blank line after the headers")
    status = 200
    headers: list[tuple[str, str]] = []
    has_type = has_location = False
    for raw in output[:end].split(b"\n"):
        line = raw.removesuffix(b"\r")
        name, colon, value = line.partition(b":")
        name, value = name.strip(), value.strip()
        if not colon or not _TOKEN.match(name) or not _VALUE.match(value):
            raise MalformedOutput(f"not a header line: {line[:80]!r}")
        lowered = name.lower()
        if lowered == b"status":
            code = value.split(b" ", 1)[0]
            if not (code.isdigit() and len(code) == 3 and 100 <= int(code) <= 599):
                raise MalformedOutput(f"not a status: {value[:40]!r}")
            status = int(code)
            continue
        has_type |= lowered == b"content-type"
        has_location |= lowered == b"location"
        if lowered.decode() in _HOP_BY_HOP:
            continue  # the gateway frames the response itself
        headers.append((name.decode(), value.decode()))
    if not (has_type or has_location):
        raise MalformedOutput("neither Content-Type nor Location among the headers")
    if has_location and status == 200 and not has_type:
        status = 302  # CGI 1.1: a client redirect
    return CgiResponse(status, headers, output[end + gap :])


def _header_end(output: bytes) -> tuple[int, int]:
    """Where the headers end and how long the blank line is: (-1, 0) if there is none."""
    head = output[: MAX_HEADER_BYTES + 4]
    candidates = [(head.find(b"\n\n"), 2), (head.find(b"\r\n\r\n"), 4)]
    found = [(at, gap) for at, gap in candidates if at >= 0]
    if not found:
        return -1, 0
    return min(found)

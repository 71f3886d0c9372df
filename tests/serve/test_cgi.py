"""WAGI/CGI 1.1 without guests: the environment and arguments a request becomes, and what
output is a response."""

from __future__ import annotations

import pytest

from host.serve.cgi import MalformedOutput, Request, arguments, environment, parse_output


def as_dict(entries: list[bytes]) -> dict[str, str]:
    return dict(entry.decode().split("=", 1) for entry in entries)


def test_the_request_becomes_cgi_variables_and_they_win_a_clash() -> None:
    request = Request(
        method="PUT",
        path="/shout/deeper",
        query="a=1&b",
        headers=(("Content-Type", "text/x"), ("X-Thing", "one"), ("x-thing", "two")),
        body=b"12345",
        route="/shout",
        server_name="example",
        server_port=8080,
        remote_addr="10.0.0.1",
    )
    env = as_dict(environment(request, {"OWN": "mine", "REQUEST_METHOD": "GET"}))
    assert env["OWN"] == "mine"
    assert env["REQUEST_METHOD"] == "PUT"
    assert env["PATH_INFO"] == "/shout/deeper"
    assert env["QUERY_STRING"] == "a=1&b"
    assert env["CONTENT_TYPE"] == "text/x"
    assert env["CONTENT_LENGTH"] == "5"
    assert env["SERVER_NAME"] == "example"
    assert env["SERVER_PORT"] == "8080"
    assert env["REMOTE_ADDR"] == "10.0.0.1"
    assert env["X_MATCHED_ROUTE"] == "/shout"
    assert env["HTTP_X_THING"] == "one, two"
    assert "HTTP_CONTENT_TYPE" not in env


def test_arguments_are_the_route_the_function_args_and_the_query_parts() -> None:
    request = Request(query="x=1&hello+world&%41%00b&&", route="/r")
    assert arguments(request, ["--flag"]) == [b"/r", b"--flag", b"x=1", b"hello world"]


@pytest.mark.parametrize(
    ("output", "status", "headers", "body"),
    [
        (b"Content-Type: text/plain\n\nhi", 200, [("Content-Type", "text/plain")], b"hi"),
        (
            b"Status: 404 Not Found\r\nContent-Type: a/b\r\nX-A: 1\r\n\r\nbody\n\nmore",
            404,
            [("Content-Type", "a/b"), ("X-A", "1")],
            b"body\n\nmore",
        ),
        (b"Location: /elsewhere\n\n", 302, [("Location", "/elsewhere")], b""),
        (b"Content-Type: t/t\nContent-Length: 99\n\n", 200, [("Content-Type", "t/t")], b""),
    ],
)
def test_a_response_is_parsed(
    output: bytes, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    parsed = parse_output(output)
    assert (parsed.status, parsed.headers, parsed.body) == (status, headers, body)


@pytest.mark.parametrize(
    "output",
    [
        b"",
        b"just a body",
        b"X-Only: header\n\nno content type",
        b"Content-Type: text/plain\nStatus: 99\n\n",
        b"Content-Type: text/plain\nBad Header Name: x\n\n",
        b"Content-Type: text/\x01plain\n\n",
    ],
)
def test_anything_else_is_malformed(output: bytes) -> None:
    with pytest.raises(MalformedOutput):
        parse_output(output)

"""Both HTTP parsers the server can run (httptools, the default; h11, the fallback) keep the
same rules: a deadline on request headers (slow-loris), a 400 for an HTTP/1.1 request without
Host, and ordinary keep-alive requests answered. A tiny ASGI app on 127.0.0.1 serves them."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from raw_http import read_all

from wanwu.server.http_protocol import header_deadline_protocol

DEADLINE = 0.6


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ok_app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=["httptools", "h11"])
def port(request):
    protocol = header_deadline_protocol(DEADLINE, request.param)
    assert (
        protocol.__name__
        == {"httptools": "HeaderDeadlineHttpToolsProtocol", "h11": "HeaderDeadlineH11Protocol"}[request.param]
    )
    port = free_port()
    config = uvicorn.Config(ok_app, host="127.0.0.1", port=port, http=protocol, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(5)


def test_partial_headers_are_cut_off_at_the_deadline(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slo")
        t0 = time.monotonic()
        raw, closed = read_all(s, DEADLINE + 3)
    assert closed and raw == b"" and time.monotonic() - t0 < DEADLINE + 1.5


def test_a_silent_connection_is_cut_off(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        _, closed = read_all(s, DEADLINE + 3)
    assert closed


def test_kept_alive_connection_then_a_stalled_request(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(3):  # ordinary requests on one connection, slower in total than the deadline
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            raw, closed = read_all(s, 0.3)
            assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"ok") and not closed
        s.sendall(b"GET /pa")  # the next request starts and stops
        raw, closed = read_all(s, DEADLINE + 3)
    assert closed and raw == b""


def test_http11_without_host_is_a_400(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        raw, _ = read_all(s, 2)
    assert raw.startswith(b"HTTP/1.1 400"), raw[:200]

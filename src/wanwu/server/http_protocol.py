"""uvicorn's HTTP protocols with a deadline for request headers (slow-loris).

uvicorn closes a connection that stays idle for ``timeout_keep_alive`` seconds between
requests, but not one that has sent *part* of a request's headers: any byte received cancels
that timer, and nothing else limits how long the rest may take. A client could open many
connections, send half a request line on each and hold them forever. These protocols give
the headers of every request a deadline, counted from the connection's start (first
request) or from the first byte of the request (later ones on a kept-alive connection);
past it the connection is closed without an answer. The body has its own limits
(``timeouts.TimeoutMiddleware``).

Two parsers, one behaviour: httptools (C, llhttp) when it is installed — it is part of
``uvicorn[standard]`` and wanwu depends on it: it parses a request ~0.2 ms faster than h11
(benchmarks/server_latency.py) — else h11 (pure Python).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

log = logging.getLogger("wanwu.server")


class _HeaderDeadline(asyncio.Protocol):
    """The timer both protocols share, armed when a connection opens and dropped when it
    closes. ``_awaiting_headers`` says whether the request being received (or the first one,
    before any byte) has not finished its headers yet. Comes first in a protocol's bases."""

    header_timeout: float = 0.0
    _header_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: Any
    client: Any
    timeout_keep_alive_handler: Callable[[], None]  # the protocol's (an annotation: not overridden here)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.header_timeout > 0 and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _awaiting_headers(self) -> bool:
        raise NotImplementedError

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self._awaiting_headers() or self.transport.is_closing():
            return
        log.info(
            "closed a connection from %s: no complete request headers within %g s",
            self.client[0] if self.client else "?",
            self.header_timeout,
        )
        self.timeout_keep_alive_handler()  # uvicorn's way of closing an idle connection


def _h11_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11Protocol(_HeaderDeadline, H11Protocol):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._awaiting_headers() and self.conn.trailing_data[0]:
                self._arm()  # part of a request's headers: keep the deadline from its first byte
            else:
                self._disarm()

        def _awaiting_headers(self) -> bool:
            return self.conn.their_state is h11.IDLE

    HeaderDeadlineH11Protocol.header_timeout = header_timeout
    return HeaderDeadlineH11Protocol


def _httptools_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderDeadlineHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        _in_headers = True  # from the connection's start until the first request's headers end

        def on_message_begin(self) -> None:  # the first byte of a request
            super().on_message_begin()
            self._in_headers = True
            self._arm()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            if self.parser.get_http_version() == "1.1" and not any(name == b"host" for name, _ in self.headers):
                # RFC 9112 3.2: a 400 (h11 enforces it; llhttp does not). An exception raised in
                # a parser callback reaches uvicorn as a parse error: 400, connection closed.
                raise ValueError("an HTTP/1.1 request without a Host header")
            super().on_headers_complete()

        def _awaiting_headers(self) -> bool:
            return self._in_headers

    HeaderDeadlineHttpToolsProtocol.header_timeout = header_timeout
    return HeaderDeadlineHttpToolsProtocol


def header_deadline_protocol(header_timeout: float, parser: str = "auto") -> type[asyncio.Protocol]:
    """A uvicorn protocol class that closes a connection whose request headers are not
    complete within ``header_timeout`` seconds (0: uvicorn's own behaviour). ``parser``:
    ``httptools``, ``h11`` or ``auto`` (httptools when importable)."""
    if parser == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:
            parser = "h11"
        else:
            parser = "httptools"
    if parser == "httptools":
        return _httptools_protocol(header_timeout)
    return _h11_protocol(header_timeout)

"""uvicorn's h11 protocol with a deadline for request headers (slow-loris).

uvicorn closes a connection that stays idle for ``timeout_keep_alive`` seconds between
requests, but not one that has sent *part* of a request's headers: any byte received cancels
that timer, and nothing else limits how long the rest may take. A client could open many
connections, send half a request line on each and hold them forever. This protocol gives
the headers of every request a deadline, counted from the connection's start (first
request) or from the first byte of the request (later ones on a kept-alive connection);
past it the connection is closed without an answer. The body has its own limits
(``timeouts.TimeoutMiddleware``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("wanwu.server")


def header_deadline_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """An ``H11Protocol`` subclass that closes a connection whose request headers are not
    complete within ``header_timeout`` seconds (0: uvicorn's own behaviour)."""

    class HeaderDeadlineH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
                self._arm()  # part of a request's headers: keep the deadline from its first byte
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if header_timeout > 0 and self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
                return
            log.info(
                "closed a connection from %s: no complete request headers within %g s",
                self.client[0] if self.client else "?",
                header_timeout,
            )
            self.timeout_keep_alive_handler()

    return HeaderDeadlineH11Protocol

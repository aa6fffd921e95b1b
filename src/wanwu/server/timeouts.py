"""Time limits of one request, as ASGI middleware.

- ``--body-timeout S``: a request body must keep arriving. The server waits at most S seconds
  for its next bytes, and the whole body may take S seconds plus one second per
  ``MIN_BODY_RATE`` bytes (a slow-loris client trickling a byte now and then is cut off as
  surely as one that stalls). Past either: 408 and the connection is closed.
- ``--request-timeout S``: the server works on a request for at most S seconds after its body
  has arrived (time spent waiting for the client does not count). Past that: 503 with
  ``Retry-After``; the work still running in threads finishes in the background, its result
  is dropped, and the server goes on serving.

(Slow *headers* are cut off by the connection protocol, see ``http_protocol``.)
"""

from __future__ import annotations

import logging
import math

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BodyTimeoutError, RequestTimeoutError, error_response

log = logging.getLogger("wanwu.server")

MIN_BODY_RATE = 8 * 1024  # bytes/s a body must average after its first --body-timeout seconds


def body_timeout_message(seconds: float) -> str:
    return (
        f"the request body stopped arriving or came too slowly (the limit is {seconds:g} s without "
        f"data, and {MIN_BODY_RATE // 1024} KB/s on average); the connection is closed. Retry on a "
        "better connection, or start the server with a larger --body-timeout (WANWU_BODY_TIMEOUT)"
    )


def request_timeout_message(seconds: float) -> str:
    return (
        f"the server could not answer within {seconds:g} s and stopped working on this request "
        "(it may be busy); try again shortly, or send fewer or smaller images. The limit is "
        "--request-timeout (WANWU_REQUEST_TIMEOUT)"
    )


class TimeoutMiddleware:
    """Enforce ``body_timeout`` while the body streams in and ``request_timeout`` on the work
    after it (0 turns either off)."""

    def __init__(self, app: ASGIApp, request_timeout: float, body_timeout: float):
        self.app = app
        self.request_timeout = request_timeout
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.request_timeout or self.body_timeout):
            await self.app(scope, receive, send)
            return
        work_limit, body_limit = self.request_timeout, self.body_timeout
        now = anyio.current_time
        body_start = now()
        received = 0
        body_done = False
        started = False
        work = anyio.CancelScope(deadline=body_start + work_limit if work_limit else math.inf)

        async def timed_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            work.deadline = math.inf  # waiting for the client is not the server's working time
            try:
                if body_limit:
                    overall = body_start + body_limit + received / MIN_BODY_RATE
                    with anyio.move_on_after(max(0.0, min(body_limit, overall - now()))) as idle:
                        message = await receive()
                    if idle.cancelled_caught:
                        log.info(
                            "%s %s: the request body stalled; answering 408 and closing the connection",
                            scope.get("method"),
                            scope.get("path"),
                        )
                        raise BodyTimeoutError(body_timeout_message(body_limit))
                else:
                    message = await receive()
            finally:
                if work_limit and not started:
                    work.deadline = now() + work_limit
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:  # http.disconnect
                body_done = True
            return message

        async def timed_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                work.deadline = math.inf  # never cut a response in half
            await send(message)

        with work:
            await self.app(scope, timed_receive, timed_send)
        if work.cancelled_caught and not started:
            request = Request(scope)
            log.warning(
                "%s %s took longer than --request-timeout %g s; answered 503 [request_id=%s]",
                scope.get("method"),
                scope.get("path"),
                work_limit,
                scope.get("state", {}).get("request_id"),
            )
            headers = {"Retry-After": "1"}
            if not body_done:
                headers["Connection"] = "close"  # unread body bytes must not be taken for a next request
            response = error_response(
                request,
                RequestTimeoutError.http_status,
                RequestTimeoutError.code,
                request_timeout_message(work_limit),
                headers=headers,
            )
            await response(scope, receive, send)

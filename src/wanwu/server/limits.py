"""Request size limits as ASGI middleware: a body over the limit is refused with 413
without being read into memory. A declared ``Content-Length`` over the limit is refused
before a byte is read; a body without one (chunked) is counted as it streams in. Headers
over ``MAX_HEADER_BYTES`` in all are refused with 431."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import RequestTooLargeError, error_response

# h11 already refuses headers that arrive in pieces past 16 KB; this also covers a burst.
MAX_HEADER_BYTES = 32 * 1024


def too_large_message(limit_bytes: int) -> str:
    return (
        f"the request body is larger than the limit of {limit_bytes / 1048576:g} MB; send a smaller "
        "image, or start the server with a larger --max-upload-mb (WANWU_MAX_UPLOAD_MB)"
    )


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with a JSON 413 (and oversized or ambiguous headers
    with 431 / 400) before the route reads anything."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            response = error_response(
                Request(scope),
                431,
                "headers_too_large",
                f"the request headers are larger than {MAX_HEADER_BYTES // 1024} KB in all; send fewer or shorter ones",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"transfer-encoding" in headers and b"content-length" in headers:
            # RFC 9112 6.3: a sign of request smuggling when a proxy sits in front; refuse it
            response = error_response(
                Request(scope),
                400,
                "bad_request",
                "the request has both Content-Length and Transfer-Encoding; send one of them",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLargeError(too_large_message(self.max_bytes))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLargeError:
            # Normally the app's error handler answers; this covers bodies read outside a route.
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        response = error_response(
            request, 413, RequestTooLargeError.code, too_large_message(self.max_bytes), headers={"Connection": "close"}
        )
        await response(scope, receive, send)

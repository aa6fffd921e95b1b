"""Request body size limit as ASGI middleware: a body over the limit is refused with 413
without being read into memory. A declared ``Content-Length`` over the limit is refused
before a byte is read; a body without one (chunked) is counted as it streams in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import RequestTooLargeError, error_response


def too_large_message(limit_bytes: int) -> str:
    return (
        f"the request body is larger than the limit of {limit_bytes / 1048576:g} MB; send a smaller "
        "image, or start the server with a larger --max-upload-mb (WANWU_MAX_UPLOAD_MB)"
    )


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with a JSON 413."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
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
        response = error_response(request, 413, RequestTooLargeError.code, too_large_message(self.max_bytes),
                                  headers={"Connection": "close"})
        await response(scope, receive, send)

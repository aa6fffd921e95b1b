"""Pure-ASGI middleware around every request: a request id (and the catch-all 500 that
reports it), the security headers of the web UI, and the drain gate used on shutdown."""

from __future__ import annotations

import logging
import re
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ShuttingDownError, error_response

log = logging.getLogger("wanwu.server")

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),  # CSP frame-ancestors says the same to newer browsers
]


class RequestContextMiddleware:
    """Give every request an id (the client's ``X-Request-ID`` when sane, else a new one),
    echo it in the response, and turn an unexpected exception into a logged JSON 500."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _CLIENT_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("%s %s failed [request_id=%s]", scope.get("method"), scope.get("path"), request_id)
            if started:
                return  # the status is out; nothing more to tell the client
            request = Request(scope)
            message = f"internal error; it is logged with request id {request_id} — please report it"
            response = error_response(request, 500, "internal_error", message)
            await response(scope, receive, send_with_id)


class SecurityHeadersMiddleware:
    """Content-Security-Policy (no inline code, no third-party origins), nosniff and
    no-referrer on every response; API responses get them too, which costs nothing."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


PROBE_PATHS = frozenset({"/ping", "/v2/health/live", "/v2/health/ready", "/metrics"})


class InFlight:
    """How many requests the app is working on (the shutdown waits for it to reach 0)."""

    def __init__(self) -> None:
        self.count = 0


class DrainMiddleware:
    """Count requests in flight; once ``draining()`` is true, answer new requests 503 (with
    ``Retry-After`` and ``Connection: close``) while those already in flight finish. Probes and
    metrics are still answered, so a load balancer sees the server turn not-ready."""

    def __init__(self, app: ASGIApp, draining, in_flight: InFlight):
        self.app = app
        self.draining = draining
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.draining() and scope["path"] not in PROBE_PATHS:
            message = "the server is shutting down; retry in a moment (another instance may answer)"
            response = error_response(
                Request(scope),
                ShuttingDownError.http_status,
                ShuttingDownError.code,
                message,
                headers={"Retry-After": "1", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        self.in_flight.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.count -= 1

"""API-key access control: with ``--api-key`` set, every route needs ``Authorization: Bearer
<key>`` except an explicit list of open ones (deny by default, so a route added later is
protected without anyone remembering to).

Open: the web UI (``/``, ``/static/*``, ``/favicon.ico``; it must load to ask for the key),
the probes (``/ping``, ``/v2/health/live``, ``/v2/health/ready``), and the API description
(``/docs``, ``/docs/style.css``, ``/openapi.json``: the same text as the open-source code, and a
browser cannot send a Bearer header to read it). ``/metrics`` is open only with
``--metrics-public``. CORS preflights are answered before this check (``CORSMiddleware`` sits
outside it), as browsers send them without credentials.

The key is compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

log = logging.getLogger("wanwu.server")

OPEN_PATHS = frozenset(
    {
        "/",
        "/favicon.ico",
        "/ping",
        "/v2/health/live",
        "/v2/health/ready",
        "/docs",
        "/docs/style.css",
        "/openapi.json",
    }
)
OPEN_PREFIXES = ("/static/",)
METRICS_PATH = "/metrics"
REALM = 'Bearer realm="wanwu"'


def is_open_path(path: str, *, metrics_public: bool) -> bool:
    """Whether ``path`` is served without the API key."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return True
    return metrics_public and path == METRICS_PATH


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), else None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def key_matches(given: str, expected: str) -> bool:
    """Constant-time comparison. Both sides are hashed first, so neither the contents nor
    the length of the key can be learnt from the time a wrong guess takes."""
    a = hashlib.sha256(given.encode("utf-8")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


class ApiKeyMiddleware:
    """Answer 401 (JSON, ``WWW-Authenticate: Bearer``) to requests for protected paths that do
    not carry the key; let everything else through untouched."""

    def __init__(self, app: ASGIApp, api_key: str, metrics_public: bool = False):
        self.app = app
        self._key = api_key
        self.metrics_public = metrics_public
        self._refused = 0  # wrong keys since the last warning (a guessing client must not flood the log)
        self._warned_at = float("-inf")

    def __repr__(self) -> str:  # keep the key out of any debug output
        return f"ApiKeyMiddleware(metrics_public={self.metrics_public})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_path(scope["path"], metrics_public=self.metrics_public):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is not None and key_matches(token, self._key):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if token is None:
            message = (
                "this server needs an API key: send it as the header 'Authorization: Bearer <key>' "
                "(the server's key is set with --api-key, --api-key-file or WANWU_API_KEY)"
            )
            challenge = REALM
        else:
            message = "the API key is wrong; send the server's key as 'Authorization: Bearer <key>'"
            challenge = REALM + ', error="invalid_token"'
            self._warn_wrong_key(scope)
        headers = {"WWW-Authenticate": challenge}
        if _has_body(scope):
            headers["Connection"] = "close"  # the body is not read: do not reuse the connection
        response = error_response(request, 401, "unauthorized", message, headers=headers)
        await response(scope, receive, send)

    def _warn_wrong_key(self, scope: Scope) -> None:
        """One warning per minute at most, with the count of refusals it stands for."""
        self._refused += 1
        now = time.monotonic()
        if now - self._warned_at < 60:
            return
        client = scope.get("client")
        log.warning(
            "refused %d request(s) with a wrong API key (latest: %s %s from %s)",
            self._refused,
            scope.get("method"),
            scope["path"],
            client[0] if client else "?",
        )
        self._refused, self._warned_at = 0, now


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False

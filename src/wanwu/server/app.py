"""``create_app(config)``: the FastAPI application of ``wanwu serve`` — JSON API, v2 protocol,
TorchServe-style routes, metrics, web UI — with its middleware and lifecycle."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from starlette.middleware.cors import CORSMiddleware

from .. import __version__
from ..library.catalogue import resolve_db_path
from . import api, torchserve, v2
from .auth import ApiKeyMiddleware, is_open_path
from .config import ServerConfig
from .context import AppContext
from .errors import install_error_handlers
from .inference import InferenceService
from .library_app import install_library
from .limits import BodySizeLimitMiddleware
from .metrics import Metrics, MetricsMiddleware
from .middleware import (
    REQUEST_ID_HEADER,
    DrainMiddleware,
    InFlight,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from .pages import install_pages
from .timeouts import TimeoutMiddleware

log = logging.getLogger("wanwu.server")

DESCRIPTION = (
    "Offline, private ImageNet-1k image classification. A JSON API for people and the web UI "
    "(/api/v1), the Open Inference Protocol v2 for machines (/v2, works with tritonclient), and "
    'TorchServe-style /predictions and /ping. Errors: {"error": {"code", "message"}} '
    '({"error": "message"} on /v2).'
)


# What a browser page on another origin may send and read (with --cors-origin).
CORS_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "X-Filename",
    REQUEST_ID_HEADER,
    "Inference-Header-Content-Length",
]
CORS_EXPOSE_HEADERS = [REQUEST_ID_HEADER, "Retry-After", "WWW-Authenticate", "Inference-Header-Content-Length"]


def _finish_openapi(app: FastAPI, config: ServerConfig) -> None:
    """FastAPI documents its own 422 body (``HTTPValidationError``); ours is ``ErrorResponse``
    (and v2 path parameters are plain strings that cannot fail validation). With an API key,
    the protected operations declare the Bearer scheme and their 401."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                r422 = op.get("responses", {}).get("422", {})
                if "HTTPValidationError" not in str(r422):
                    continue
                if path.startswith("/v2"):
                    del op["responses"]["422"]
                else:
                    op["responses"]["422"] = {
                        "description": "invalid request parameter",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                    }
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        if config.auth_enabled:
            _document_auth(schema, config)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_auth(schema: dict, config: ServerConfig) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "the server's --api-key",
    }
    for path, item in schema.get("paths", {}).items():
        if is_open_path(path, metrics_public=config.metrics_public):
            continue
        for op in item.values():
            op["security"] = [{"bearer": []}]
            ref = (
                "#/components/schemas/V2ErrorResponse"
                if path.startswith("/v2")
                else "#/components/schemas/ErrorResponse"
            )
            op.setdefault("responses", {})["401"] = {
                "description": "no API key, or a wrong one",
                "content": {"application/json": {"schema": {"$ref": ref}}},
            }


def create_app(config: ServerConfig | None = None, *, service: InferenceService | None = None) -> FastAPI:
    """A new app. ``service`` may be given already started (the CLI loads the model before
    binding the port); otherwise the app makes one and loads the default model at startup."""
    config = config or ServerConfig.from_env()
    service = service or InferenceService(config)
    metrics = Metrics()
    service.recorder = metrics  # the stage runner records stage times here
    metrics.ready.set_function(lambda: 1.0 if service.ready else 0.0)
    metrics.watch_service(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(service.start)  # load + warm up the default model
        try:
            yield
        finally:
            service.begin_drain()
            service.close()

    app = FastAPI(
        title="wanwu",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = AppContext(config, service, metrics)
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(v2.router)
    app.include_router(torchserve.router)
    install_library(
        app,
        resolve_db_path(config.library or None) if config.library is not None else None,
        config.tag_confidence,
    )

    @app.get(
        "/metrics",
        tags=["Operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    install_pages(app)
    _finish_openapi(app, config)
    in_flight = app.state.in_flight = InFlight()

    # Added innermost first. A request passes: metrics -> security headers -> CORS ->
    # request id / 500 -> drain gate -> API key -> timeouts -> body limit -> routes, so every
    # answer (401, 413, 503, 500 included) carries the security headers, the CORS headers a
    # browser needs to read it, and a request id; and a preflight needs no key.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_upload_bytes)
    app.add_middleware(TimeoutMiddleware, request_timeout=config.request_timeout, body_timeout=config.body_timeout)
    if config.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key, metrics_public=config.metrics_public)
    app.add_middleware(DrainMiddleware, draining=lambda: service.draining, in_flight=in_flight)
    app.add_middleware(RequestContextMiddleware)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics, router=app.router)
    return app

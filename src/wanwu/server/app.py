"""``create_app(config)``: the FastAPI application of ``wanwu serve`` — JSON API, v2 protocol,
TorchServe-style routes, metrics, web UI — with its middleware and lifecycle."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import Response

from .. import __version__
from . import api, torchserve, v2
from .config import ServerConfig
from .context import AppContext
from .errors import install_error_handlers
from .inference import InferenceService
from .limits import BodySizeLimitMiddleware
from .metrics import Metrics, MetricsMiddleware
from .middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from .pages import install_pages

log = logging.getLogger("wanwu.server")

DESCRIPTION = (
    "Offline, private ImageNet-1k image classification. A JSON API for people and the web UI "
    "(/api/v1), the Open Inference Protocol v2 for machines (/v2, works with tritonclient), and "
    "TorchServe-style /predictions and /ping. Errors: {\"error\": {\"code\", \"message\"}} "
    "({\"error\": \"message\"} on /v2)."
)


def _document_our_validation_errors(app: FastAPI) -> None:
    """FastAPI documents its own 422 body (``HTTPValidationError``); ours is ``ErrorResponse``
    (and v2 path parameters are plain strings that cannot fail validation)."""
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
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: ServerConfig | None = None, *, service: InferenceService | None = None) -> FastAPI:
    """A new app. ``service`` may be given already started (the CLI loads the model before
    binding the port); otherwise the app makes one and loads the default model at startup."""
    config = config or ServerConfig.from_env()
    service = service or InferenceService(config)
    metrics = Metrics()
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
        title="wanwu", version=__version__, description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    app.state.ctx = AppContext(config, service, metrics)
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(v2.router)
    app.include_router(torchserve.router)

    @app.get("/metrics", tags=["Operations"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    install_pages(app)
    _document_our_validation_errors(app)

    # Outermost last: metrics -> request id / 500 -> body limit -> security headers -> routes.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_upload_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics, router=app.router)
    return app

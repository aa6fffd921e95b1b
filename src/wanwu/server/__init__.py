"""``wanwu serve``: FastAPI app with the JSON API, the Open Inference Protocol v2, metrics and
the web UI. Start it with ``wanwu serve`` or ``create_app(ServerConfig.from_env())``.

The names below are imported on first use (PEP 562), so ``wanwu.server.config`` (whose table
``wanwu serve``'s flags are generated from) comes without FastAPI and uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .app import create_app
    from .config import ServerConfig
    from .inference import InferenceService

__all__ = ["InferenceService", "ServerConfig", "create_app"]

_HOMES = {"create_app": ".app", "ServerConfig": ".config", "InferenceService": ".inference"}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)

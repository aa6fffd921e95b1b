"""What the routes of one app share: its config, its ``InferenceService`` and its metrics."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from .config import ServerConfig
from .inference import InferenceService
from .metrics import Metrics


@dataclass
class AppContext:
    config: ServerConfig
    service: InferenceService
    metrics: Metrics


async def get_context(request: Request) -> AppContext:
    """FastAPI dependency: the context of the app serving ``request``. ``async`` although it
    awaits nothing: FastAPI runs a plain ``def`` dependency on its thread pool, a thread hop
    per request (measured: ~0.3 ms of a lone request)."""
    return request.app.state.ctx

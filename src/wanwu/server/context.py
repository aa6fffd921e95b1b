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


def get_context(request: Request) -> AppContext:
    """FastAPI dependency: the context of the app serving ``request``."""
    return request.app.state.ctx

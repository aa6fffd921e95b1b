"""``wanwu serve``: FastAPI app with the JSON API, the Open Inference Protocol v2, metrics and
the web UI. Start it with ``wanwu serve`` or ``create_app(ServerConfig.from_env())``.

The names below are imported on first use (PEP 562), so ``wanwu.server.config`` (which the
``wanwu`` command's parser reads for the serve flags' help) comes without FastAPI and uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import ServerConfig
    from .inference import InferenceService

__all__ = ["InferenceService", "ServerConfig", "create_app"]

_HOMES = {"create_app": ".app", "ServerConfig": ".config", "InferenceService": ".inference"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])

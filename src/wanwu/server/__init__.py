"""``wanwu serve``: FastAPI app with the JSON API, the Open Inference Protocol v2, metrics and
the web UI. Start it with ``wanwu serve`` or ``create_app(ServerConfig.from_env())``."""

from .app import create_app
from .config import ServerConfig
from .inference import InferenceService

__all__ = ["InferenceService", "ServerConfig", "create_app"]
